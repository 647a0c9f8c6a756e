"""Surprising objects are counted by reason and logged once; the store never raises."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import scrape, value


def _with(path: list[str], new: Any) -> dict[str, Any]:
    obj = copy.deepcopy(o.kustomization())
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return obj


CASES = [
    ("missing-status", _with(["status"], None), "missing_status"),
    ("conditions-not-a-list", _with(["status", "conditions"], "Ready"), "bad_field_type"),
    (
        "condition-status-lowercase",
        _with(["status", "conditions"], [{"type": "Ready", "status": "true", "reason": "x"}]),
        "unknown_condition_status",
    ),
    ("interval-not-a-duration", _with(["spec", "interval"], "often"), "bad_duration"),
    ("interval-a-number", _with(["spec", "interval"], 5), "bad_field_type"),
    (
        "bad-timestamp",
        _with(["status", "history", 0, "lastReconciled"], "yesterday"),
        "bad_timestamp",
    ),
    ("status-a-string", _with(["status"], "Ready"), "bad_field_type"),
    ("no-uid", _with(["metadata", "uid"], None), "missing_uid"),
    (
        "huge-message",
        _with(["status", "conditions"], [o.cond("Ready", "False", "BuildFailed", "x" * 100_000)]),
        "huge_message",
    ),
    ("huge-label", _with(["metadata", "name"], "n" * 1000), "oversized_label"),
]


def test_unknown_condition_types_are_counted_quietly(caplog: pytest.LogCaptureFixture) -> None:
    obj = copy.deepcopy(o.kustomization())
    obj["status"]["conditions"].append(o.cond("FutureThing", "True", "Whatever"))
    store = MetricStore()
    with caplog.at_level(logging.WARNING):
        store.upsert("c1", "Kustomization", obj)
    count = store.metrics.registry.get_sample_value(
        "fluxwatch_exporter_malformed_objects_total",
        {"cluster": "c1", "kind": "Kustomization", "reason": "unknown_condition_type"},
    )
    assert count == 1
    assert not caplog.records
    assert value(scrape(store), "flux_resource_status", status="ready") == 1


@pytest.mark.parametrize(("obj", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_is_counted_and_exported_as_far_as_possible(
    obj: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = MetricStore()
    with caplog.at_level(logging.WARNING):
        store.upsert("c1", "Kustomization", obj)
        store.upsert("c1", "Kustomization", obj)
    reg = store.metrics.registry
    count = reg.get_sample_value(
        "fluxwatch_exporter_malformed_objects_total",
        {"cluster": "c1", "kind": "Kustomization", "reason": reason},
    )
    assert count == 2  # counted per event...
    assert len([r for r in caplog.records if "malformed" in r.message]) == 1  # ...logged once
    data = scrape(store)
    assert value(data, "flux_cluster_resources", kind="Kustomization", status="ready") is not None


@pytest.mark.parametrize(
    "obj",
    [None, "a string", 42, {"metadata": "x"}, {"metadata": {"name": 7, "uid": []}}],
    ids=["none", "string", "number", "metadata-string", "wrong-types"],
)
def test_garbage_never_raises(obj: Any) -> None:
    store = MetricStore()
    store.upsert("c1", "GitRepository", obj)
    store.replace("c1", "GitRepository", [obj, o.git_repository()])
    store.delete("c1", "GitRepository", obj)
    data = scrape(store)
    assert value(data, "flux_resource_status", name="app") == 1
