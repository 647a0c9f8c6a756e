"""The memory behind commit-to-applied latency stays bounded however long the fleet runs."""

from __future__ import annotations

from exporter.clusterdata import MAX_PENDING_PER_SOURCE
from exporter.history import Aggregates, Histogram, RevisionMemory
from exporter.store import MetricStore
from tests.exporter import objects as o

SRC = ("GitRepository", "flux-system", "app")


def test_per_source_and_per_cluster_bounds() -> None:
    memory = RevisionMemory(per_source=4, max_sources=3)
    for i in range(100):
        memory.seen(SRC, f"main@sha1:{i:040x}", float(i))
    assert len(memory) == 4
    assert memory.first_seen(SRC, f"main@sha1:{99:040x}") == 99
    assert memory.first_seen(SRC, f"main@sha1:{0:040x}") is None  # forgotten, oldest first
    for i in range(10):
        memory.seen(("GitRepository", "ns", f"s{i}"), "r", 1.0)
    assert len(memory) == 3  # three sources of one revision each


def test_first_sighting_wins() -> None:
    memory = RevisionMemory()
    memory.seen(SRC, "v1", 10.0)
    memory.seen(SRC, "v1", 20.0)
    assert memory.first_seen(SRC, "v1") == 10.0


def test_pending_applies_are_bounded() -> None:
    store = MetricStore(clock=lambda: o.T0_UNIX)
    store.replace("c1", "GitRepository", [o.git_repository(revision="main@sha1:" + "0" * 40)])
    for i in range(200):  # applies of revisions the source never shows
        store.upsert("c1", "Kustomization", o.kustomization(applied=f"main@sha1:{i + 1:040x}"))
    pending = store.clusters["c1"].pending[SRC]
    assert len(pending) == MAX_PENDING_PER_SOURCE


def test_histogram_buckets_are_cumulative() -> None:
    hist = Histogram((1.0, 5.0))
    for value in (0.5, 1.0, 3.0, 9.0):
        hist.observe(value)
    assert list(hist.cumulative()) == [(1.0, 2), (5.0, 3)]
    assert (hist.count, hist.total) == (4, 13.5)


def test_aggregates_forget_a_cluster() -> None:
    agg = Aggregates()
    agg.inc("x_total", ("c1", "Kustomization"))
    agg.inc("x_total", ("c2", "Kustomization"))
    agg.observe("h", (1.0,), ("c1",), 0.5)
    agg.forget_cluster("c1")
    assert agg.counters["x_total"] == {("c2", "Kustomization"): 1.0}
    assert agg.histograms["h"] == {}
