"""The one log line per cluster state change: plain words, kinds counted per API version, and
the level that keeps failures visible at ``--log-level warning``."""

from __future__ import annotations

import pytest

from exporter.kube.fleet import describe_state
from exporter.sink import ClusterState

CURRENT = {
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "HelmChart": "source.toolkit.fluxcd.io/v1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
}
LEGACY = {
    "GitRepository": "source.toolkit.fluxcd.io/v1beta2",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1beta2",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2beta2",
}

LINES = [
    (
        "current",
        ClusterState(reachable=True, synced=True, served=CURRENT),
        "reachable, synced, 4 kinds served (helm.toolkit.fluxcd.io/v2: 1, "
        "kustomize.toolkit.fluxcd.io/v1: 1, source.toolkit.fluxcd.io/v1: 2)",
    ),
    (
        "legacy",
        ClusterState(reachable=True, synced=False, served=LEGACY),
        "reachable, syncing, 3 kinds served (helm.toolkit.fluxcd.io/v2beta2: 1, "
        "kustomize.toolkit.fluxcd.io/v1beta2: 1, source.toolkit.fluxcd.io/v1beta2: 1)",
    ),
    (
        "no-flux",
        ClusterState(reachable=True, synced=True),
        "reachable, synced, 0 kinds served (no Flux)",
    ),
    (
        "down",
        ClusterState(reachable=False, synced=True, error="ConnectionFailed: refused"),
        "unreachable, error: ConnectionFailed: refused",
    ),
]


@pytest.mark.parametrize(("state", "line"), [c[1:] for c in LINES], ids=[c[0] for c in LINES])
def test_state_line(state: ClusterState, line: str) -> None:
    assert describe_state(state) == line
