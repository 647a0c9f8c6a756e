"""Root cause and drift: following sourceRef, chartRef and dependsOn to the first broken object."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.rootcause import find_root, wanted_revision
from exporter.status import Derived, ObjKey, derive
from tests.exporter import objects as o

FS = "flux-system"


def _index(*objs: dict[str, Any]) -> dict[ObjKey, Derived]:
    out = {}
    for obj in objs:
        d, _ = derive(obj["kind"], obj)
        out[d.key] = d
    return out


def _root(index: dict[ObjKey, Derived], key: ObjKey) -> tuple[str, str, str, str] | None:
    root = find_root(index[key], index.get)
    return None if root is None else (root.kind, root.namespace, root.name, root.reason)


BROKEN_GIT = o.failing(o.git_repository("app"), "GitOperationFailed")
BLOCKED_K = o.failing(o.kustomization("app"), "ArtifactFailed")
BROKEN_REPO = o.failing(o.helm_repository("charts"), "IndexationFailed")
BROKEN_CHART = o.failing(o.helm_chart("apps-web"), "ChartPullFailed")
FAILING_HR = o.failing(o.helm_release("web"), "ArtifactFailed")
DEP_BROKEN = o.failing(o.kustomization("infra", source="app"), "HealthCheckFailed")
DEP_WAITING = o.failing(o.kustomization("apps", depends_on=("infra",)), "DependencyNotReady")
DEP_WAITING_2 = o.failing(o.kustomization("tenants", depends_on=("apps",)), "DependencyNotReady")
CYCLE_A = o.failing(o.kustomization("a", depends_on=("b",)), "DependencyNotReady")
CYCLE_B = o.failing(o.kustomization("b", depends_on=("a",)), "DependencyNotReady")

CASES = [
    (
        "ready-has-no-root",
        [o.git_repository(), o.kustomization()],
        ("Kustomization", FS, "app"),
        None,
    ),
    (
        "failing-alone-is-its-own-root",
        [o.git_repository(), o.failing(o.kustomization(), "BuildFailed")],
        ("Kustomization", FS, "app"),
        ("Kustomization", FS, "app", "BuildFailed"),
    ),
    (
        "kustomization-points-at-broken-git",
        [BROKEN_GIT, BLOCKED_K],
        ("Kustomization", FS, "app"),
        ("GitRepository", FS, "app", "GitOperationFailed"),
    ),
    (
        "helmrelease-through-chart-to-repository",
        [BROKEN_REPO, BROKEN_CHART, FAILING_HR],
        ("HelmRelease", "apps", "web"),
        ("HelmRepository", FS, "charts", "IndexationFailed"),
    ),
    (
        "helmrelease-to-chart",
        [o.helm_repository(), BROKEN_CHART, FAILING_HR],
        ("HelmRelease", "apps", "web"),
        ("HelmChart", FS, "apps-web", "ChartPullFailed"),
    ),
    (
        "depends-on-chain-two-levels",
        [o.git_repository(), DEP_BROKEN, DEP_WAITING, DEP_WAITING_2],
        ("Kustomization", FS, "tenants"),
        ("Kustomization", FS, "infra", "HealthCheckFailed"),
    ),
    (
        "depends-on-to-a-broken-source",
        [
            BROKEN_GIT,
            o.failing(o.kustomization("infra", source="app"), "ArtifactFailed"),
            DEP_WAITING,
        ],
        ("Kustomization", FS, "apps"),
        ("GitRepository", FS, "app", "GitOperationFailed"),
    ),
    (
        "cycle-stops",
        [CYCLE_A, CYCLE_B],
        ("Kustomization", FS, "a"),
        ("Kustomization", FS, "b", "DependencyNotReady"),
    ),
    (
        "missing-source-blames-self",
        [BLOCKED_K],
        ("Kustomization", FS, "app"),
        ("Kustomization", FS, "app", "ArtifactFailed"),
    ),
    (
        "suspended-source-does-not-explain",
        [
            {**o.git_repository(), "spec": {**o.git_repository()["spec"], "suspend": True}},
            o.failing(o.kustomization(), "BuildFailed"),
        ],
        ("Kustomization", FS, "app"),
        ("Kustomization", FS, "app", "BuildFailed"),
    ),
]


@pytest.mark.parametrize(
    ("objs", "start", "root"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_root_cause(
    objs: list[dict[str, Any]], start: ObjKey, root: tuple[str, ...] | None
) -> None:
    assert _root(_index(*objs), start) == root


NEW = f"main@sha1:{o.SHA_B}"
OLD = f"main@sha1:{o.SHA_A}"
DRIFT = [
    ("in-sync", [o.git_repository(revision=OLD), o.kustomization(applied=OLD)], OLD, ""),
    ("source-offers-new", [o.git_repository(revision=NEW), o.kustomization(applied=OLD)], OLD, NEW),
    (
        "attempted-not-applied",
        [
            o.git_repository(revision=NEW),
            o.failing(o.kustomization(applied=OLD, attempted=NEW), "BuildFailed"),
        ],
        OLD,
        NEW,
    ),
    ("source-unknown", [o.kustomization(applied=OLD)], OLD, ""),
]


@pytest.mark.parametrize(
    ("objs", "applied", "wanted"), [c[1:] for c in DRIFT], ids=[c[0] for c in DRIFT]
)
def test_revision_drift(objs: list[dict[str, Any]], applied: str, wanted: str) -> None:
    index = _index(*objs)
    d = index[("Kustomization", FS, "app")]
    assert d.applied_revision == applied
    assert wanted_revision(d, index.get) == wanted


def test_helmrelease_drift_against_its_chart() -> None:
    index = _index(o.helm_chart(version="6.6.0"), o.helm_release(chart_version="6.5.3"))
    assert wanted_revision(index[("HelmRelease", "apps", "web")], index.get) == "6.6.0"
    index = _index(o.helm_chart(version="6.5.3"), o.helm_release(chart_version="6.5.3"))
    assert wanted_revision(index[("HelmRelease", "apps", "web")], index.get) == ""
