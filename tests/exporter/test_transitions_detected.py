"""Transition detection on upsert/replace: the events, counters and histograms each change makes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from exporter.publisher import TransitionPublisher
from exporter.selfmetrics import SelfMetrics
from exporter.sink import ClusterState
from exporter.store import MetricStore
from exporter.transitions import Transition
from tests.exporter import objects as o
from tests.exporter.scrape import scrape, value


class Clock:
    def __init__(self, now: float = o.T0_UNIX + 3600) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ListSink:
    def __init__(self) -> None:
        self.got: list[Transition] = []

    async def publish(self, transition: Transition) -> None:
        self.got.append(transition)


def _store(clock: Clock | None = None) -> tuple[MetricStore, ListSink, TransitionPublisher]:
    metrics = SelfMetrics()
    sink = ListSink()
    publisher = TransitionPublisher(sink, metrics)
    store = MetricStore(metrics=metrics, publisher=publisher, clock=clock or Clock())
    return store, sink, publisher


def _queued(publisher: TransitionPublisher) -> list[Transition]:
    out = []
    queue = publisher._queue
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def _suspend(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["spec"]["suspend"] = True
    return obj


K = o.kustomization()
K_FAIL = o.failing(K, "HealthCheckFailed", at="2026-01-10T11:00:00Z")
K_FAIL_2 = o.failing(K, "BuildFailed", at="2026-01-10T11:10:00Z")
K_STALL = copy.deepcopy(K_FAIL)
K_STALL["status"]["conditions"].append(o.cond("Stalled", "True", "InvalidPath"))
K_READY_LATER = o.ready(K, "ReconciliationSucceeded", at="2026-01-10T11:30:00Z")
K_PROG = o.progressing(K, at="2026-01-10T11:20:00Z")

TABLE = [
    ("ready-to-failing", [K, K_FAIL], ["failing"]),
    ("failing-again-is-quiet", [K, K_FAIL, K_FAIL_2], ["failing"]),
    ("failing-to-stalled", [K, K_FAIL, K_STALL], ["failing", "stalled"]),
    ("recovered-through-progressing", [K, K_FAIL, K_PROG, K_READY_LATER], ["failing", "recovered"]),
    ("suspend-and-resume", [K, _suspend(K), K], ["suspended", "resumed"]),
    ("progressing-flaps-are-quiet", [K, K_PROG, K], []),
    ("first-sight-is-quiet", [K_FAIL], []),
]


@pytest.mark.parametrize(("sequence", "types"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
def test_transition_types(sequence: list[dict[str, Any]], types: list[str]) -> None:
    store, _, publisher = _store()
    for obj in sequence:
        store.upsert("c1", "Kustomization", obj)
    assert [t.type for t in _queued(publisher)] == types


def test_time_to_recover_observed_and_transitions_counted() -> None:
    store, _, publisher = _store()
    for obj in (K, K_FAIL, K_PROG, K_READY_LATER):
        store.upsert("c1", "Kustomization", obj)
    data = scrape(store)
    # failing at 11:00, ready at 11:30 (the Ready condition's transition time)
    assert value(data, "flux_resource_time_to_recover_seconds_sum", cluster="c1") == 1800
    assert value(data, "flux_resource_time_to_recover_seconds_count", cluster="c1") == 1
    assert (
        value(data, "flux_resource_time_to_recover_seconds_bucket", cluster="c1", le="1800.0") == 1
    )
    assert (
        value(data, "flux_resource_time_to_recover_seconds_bucket", cluster="c1", le="600.0") == 0
    )
    count = value(data, "flux_resource_transitions_total", **{"from": "ready", "to": "failing"})
    assert count == 1
    assert (
        value(data, "flux_resource_transitions_total", **{"from": "progressing", "to": "ready"})
        == 1
    )
    recovered = next(t for t in _queued(publisher) if t.type == "recovered")
    assert (recovered.previous_status, recovered.status) == ("progressing", "ready")


def test_revision_applied_with_commit_to_applied_latency() -> None:
    clock = Clock()
    store, _, publisher = _store(clock)
    old, new = f"main@sha1:{o.SHA_A}", f"main@sha1:{o.SHA_B}"
    store.replace("c1", "GitRepository", [o.git_repository(revision=old)])
    store.replace("c1", "Kustomization", [o.kustomization(applied=old, team="x")])
    # the new commit's artifact appears at 12:00; the Kustomization applies it at 12:02:30
    store.upsert(
        "c1", "GitRepository", o.git_repository(revision=new, updated="2026-01-10T12:00:00Z")
    )
    data = scrape(store)
    assert value(data, "flux_resource_revision_drift", name="app", kind="Kustomization") == 1
    assert value(data, "flux_resource_revision_drift", name="app", wanted_revision=new) == 1
    store.upsert(
        "c1",
        "Kustomization",
        o.kustomization(applied=new, first_reconciled="2026-01-10T12:02:30Z"),
    )
    data = scrape(store)
    assert value(data, "flux_revision_apply_latency_seconds_sum", kind="Kustomization") == 150
    assert value(data, "flux_revision_apply_latency_seconds_count", kind="Kustomization") == 1
    assert value(data, "flux_resource_revisions_applied_total", kind="Kustomization") == 1
    assert value(data, "flux_resource_revision_drift", name="app", kind="Kustomization") == 0
    applied = [t for t in _queued(publisher) if t.type == "revision_applied"]
    assert [(t.revision, t.previous_revision, t.latency_seconds) for t in applied] == [
        (new, old, 150.0)
    ]


def test_latency_when_the_applier_event_arrives_before_its_source() -> None:
    store, _, _ = _store()
    old, new = f"main@sha1:{o.SHA_A}", f"main@sha1:{o.SHA_B}"
    store.replace("c1", "Kustomization", [o.kustomization(applied=old)])
    store.replace("c1", "GitRepository", [o.git_repository(revision=old)])
    store.upsert(
        "c1", "Kustomization", o.kustomization(applied=new, first_reconciled="2026-01-10T12:01:00Z")
    )
    store.upsert(
        "c1", "GitRepository", o.git_repository(revision=new, updated="2026-01-10T12:00:00Z")
    )
    # the apply was seen before the source's new artifact: observed once the source shows it
    data = scrape(store)
    assert value(data, "flux_revision_apply_latency_seconds_count") == 1
    assert value(data, "flux_revision_apply_latency_seconds_sum") == 60


def test_transition_carries_root_cause_tenant_labels_and_annotations() -> None:
    store, _, publisher = _store()
    k = o.kustomization(**{"toolkit.fluxcd.io/tenant": "team-a"})
    k["metadata"]["annotations"] = {"fluxwatch.io/slack-channel": "#team-a", "other/x": "y"}
    store.replace("c1", "GitRepository", [o.git_repository()])
    store.replace("c1", "Kustomization", [k])
    store.upsert("c1", "GitRepository", o.failing(o.git_repository(), "GitOperationFailed"))
    store.upsert("c1", "Kustomization", o.failing(k, "ArtifactFailed"))
    got = _queued(publisher)[-1]
    assert got.type == "failing"
    assert got.tenant == "team-a"
    assert got.annotations == {"fluxwatch.io/slack-channel": "#team-a"}
    assert got.root_cause is not None
    assert (got.root_cause.kind, got.root_cause.name) == ("GitRepository", "app")
    assert got.as_dict()["root_cause"]["reason"] == "GitOperationFailed"


def test_relist_detects_what_changed_while_disconnected() -> None:
    store, _, publisher = _store()
    store.replace("c1", "Kustomization", [K])
    store.replace("c1", "Kustomization", [K_FAIL])
    assert [t.type for t in _queued(publisher)] == ["failing"]


def test_cluster_reachability_transitions() -> None:
    store, _, publisher = _store()
    store.cluster_changed("c1", ClusterState(reachable=True, synced=True))
    store.cluster_changed(
        "c1", ClusterState(reachable=False, synced=True, error="connection refused")
    )
    store.cluster_changed("c1", ClusterState(reachable=True, synced=True))
    assert [t.type for t in _queued(publisher)] == ["cluster_unreachable", "cluster_reachable"]


async def test_publisher_delivers_and_counts_drops() -> None:
    metrics = SelfMetrics()
    sink = ListSink()
    publisher = TransitionPublisher(sink, metrics, maxsize=2)
    store = MetricStore(metrics=metrics, publisher=publisher, clock=Clock())
    store.upsert("c1", "Kustomization", K)
    for _ in range(2):  # four transitions into a queue of two, nothing draining yet
        store.upsert("c1", "Kustomization", _suspend(K))
        store.upsert("c1", "Kustomization", K)
    reg = metrics.registry
    assert (
        reg.get_sample_value(
            "fluxwatch_exporter_transitions_dropped_total", {"reason": "queue_full"}
        )
        == 2
    )
    publisher.start()
    await asyncio.wait_for(publisher.stop(), 5)  # stop delivers what is queued first
    assert [t.type for t in sink.got] == ["suspended", "resumed"]
    assert reg.get_sample_value("fluxwatch_exporter_transitions_published_total") == 2


def test_helmrelease_latency_through_its_helmchart() -> None:
    store, _, _ = _store()
    store.replace("c1", "HelmChart", [o.helm_chart(version="6.5.3")])
    store.replace("c1", "HelmRelease", [o.helm_release(chart_version="6.5.3")])
    store.upsert("c1", "HelmChart", o.helm_chart(version="6.6.0", updated="2026-01-10T12:00:00Z"))
    store.upsert(
        "c1", "HelmRelease", o.helm_release(chart_version="6.6.0", deployed="2026-01-10T12:03:00Z")
    )
    data = scrape(store)
    assert value(data, "flux_revision_apply_latency_seconds_sum", kind="HelmRelease") == 180
    assert value(data, "flux_resource_revisions_applied_total", kind="HelmRelease") == 1


def test_objects_created_broken_after_the_first_sync_are_news() -> None:
    store, _, publisher = _store()
    store.upsert("c1", "Kustomization", o.failing(o.kustomization("early"), "BuildFailed"))
    store.cluster_changed("c1", ClusterState(reachable=True, synced=True))
    store.upsert("c1", "Kustomization", o.failing(o.kustomization("late"), "BuildFailed"))
    store.upsert("c1", "Kustomization", o.kustomization("late-ok"))
    got = [(t.type, t.name, t.previous_status) for t in _queued(publisher)]
    assert got == [("failing", "late", "")]


def test_objects_created_broken_during_a_disconnect_are_news_on_relist() -> None:
    store, _, publisher = _store()
    store.replace("c1", "Kustomization", [o.kustomization("a")])
    store.cluster_changed("c1", ClusterState(reachable=True, synced=True))
    created = o.failing(o.kustomization("b"), "BuildFailed")
    store.replace("c1", "Kustomization", [o.kustomization("a"), created])
    assert [(t.type, t.name) for t in _queued(publisher)] == [("failing", "b")]
