"""--per-object all|not-ready|none: which objects get series; aggregates stay complete."""

from __future__ import annotations

import pytest

from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import scrape, series, value

OBJS = [
    o.kustomization("ok"),
    o.failing(o.kustomization("bad"), "BuildFailed"),
    o.progressing(o.kustomization("busy")),
]


@pytest.mark.parametrize(
    ("mode", "names"),
    [("all", {"ok", "bad", "busy"}), ("not-ready", {"bad", "busy"}), ("none", set())],
    ids=["all", "not-ready", "none"],
)
def test_per_object_mode(mode: str, names: set[str]) -> None:
    store = MetricStore(per_object=mode)
    store.replace("c1", "Kustomization", OBJS)
    data = scrape(store)
    assert {s["name"] for s in series(data, "flux_resource_status")} == names
    assert {s["name"] for s in series(data, "flux_resource_info")} == names
    for status, count in (("ready", 1), ("failing", 1), ("progressing", 1), ("stalled", 0)):
        assert value(data, "flux_cluster_resources", kind="Kustomization", status=status) == count


def test_not_ready_mode_follows_recovery() -> None:
    store = MetricStore(per_object="not-ready")
    store.upsert("c1", "Kustomization", OBJS[1])
    assert series(scrape(store), "flux_resource_status", name="bad")
    store.upsert("c1", "Kustomization", o.kustomization("bad"))
    assert not series(scrape(store), "flux_resource_status", name="bad")


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="per_object"):
        MetricStore(per_object="some")
