"""Discovery picks, per kind, the newest version whose resource list holds it (pure part)."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.kinds import KINDS
from exporter.kube.discovery import (
    choose_versions,
    group_versions_to_read,
    listable_resources,
    served_group_versions,
)

RW = ["get", "list", "watch"]


def _apis(groups: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ],
    }


def test_served_group_versions_keeps_only_flux_groups() -> None:
    apis = _apis({"apps": ["v1"], "source.toolkit.fluxcd.io": ["v1", "v1beta2"]})
    assert served_group_versions(apis) == {"source.toolkit.fluxcd.io": ("v1", "v1beta2")}
    assert served_group_versions({"groups": "nonsense"}) == {}


def test_only_versions_in_the_preference_lists_are_read() -> None:
    served = {"source.toolkit.fluxcd.io": ("v1", "v1beta1"), "flagger.app": ("v1beta1",)}
    assert group_versions_to_read(served) == [
        ("source.toolkit.fluxcd.io", "v1"),
        ("flagger.app", "v1beta1"),
    ]


def test_listable_resources_skips_subresources_and_unwatchable() -> None:
    doc = {
        "resources": [
            {"name": "gitrepositories", "verbs": RW},
            {"name": "gitrepositories/status", "verbs": ["get"]},
            {"name": "buckets", "verbs": ["get"]},
            {"name": "helmcharts"},
        ]
    }
    assert listable_resources(doc) == frozenset({"gitrepositories", "helmcharts"})


CURRENT: dict[tuple[str, str], frozenset[str]] = {}
for _kind in KINDS:
    _gv = (_kind.group, _kind.versions[0])
    CURRENT[_gv] = CURRENT.get(_gv, frozenset()) | {_kind.plural}

# Flux 2.0-2.2: source v1 had only GitRepository; the other sources and image were v1beta2.
OLD = {
    ("source.toolkit.fluxcd.io", "v1"): frozenset({"gitrepositories"}),
    ("source.toolkit.fluxcd.io", "v1beta2"): frozenset(
        {"gitrepositories", "ocirepositories", "buckets", "helmrepositories", "helmcharts"}
    ),
    ("kustomize.toolkit.fluxcd.io", "v1"): frozenset({"kustomizations"}),
    ("helm.toolkit.fluxcd.io", "v2beta2"): frozenset({"helmreleases"}),
    ("notification.toolkit.fluxcd.io", "v1beta2"): frozenset({"alerts", "providers"}),
    ("notification.toolkit.fluxcd.io", "v1"): frozenset({"receivers"}),
}
NO_IMAGE = {gv: p for gv, p in CURRENT.items() if gv[0] != "image.toolkit.fluxcd.io"}

CASES = [
    ("current-flux", CURRENT, {k.kind: k.versions[0] for k in KINDS}),
    (
        "old-flux",
        OLD,
        {
            "GitRepository": "v1",
            "OCIRepository": "v1beta2",
            "Bucket": "v1beta2",
            "HelmRepository": "v1beta2",
            "HelmChart": "v1beta2",
            "Kustomization": "v1",
            "HelmRelease": "v2beta2",
            "Receiver": "v1",
            "Alert": "v1beta2",
            "Provider": "v1beta2",
        },
    ),
    (
        "no-image-automation",
        NO_IMAGE,
        {k.kind: k.versions[0] for k in KINDS if k.group != "image.toolkit.fluxcd.io"},
    ),
    ("no-flux", {}, {}),
]


@pytest.mark.parametrize(
    ("resources", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_choose_versions(
    resources: dict[tuple[str, str], frozenset[str]], expected: dict[str, str]
) -> None:
    assert choose_versions(resources) == expected
