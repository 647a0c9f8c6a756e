"""Scrape cost of the metric store at fleet scale, against prometheus-client Gauges.

Builds a store from the simulator's ``f500`` preset (500 clusters x 100 objects, every kind) with
``--per-object all``, then measures in the same run:
- our scrape: ``exposition.render`` of the whole body, median of 5: warm (few clusters changed
  since the last scrape), with every cluster changed (all joined lines rebuilt), and the very
  first scrape after start;
- the baseline: the same per-object series held in labelled prometheus-client Gauges in a fresh
  ``CollectorRegistry``, scraped with ``generate_latest`` (median of 3; it is the slow one);
- the store's memory with tracemalloc (objects decoded from JSON inside the traced window, then
  dropped, so what remains is what the store keeps), and its scrape caches;
- the per-event cost: 100 upserts that turn Kustomizations failing in 100 clusters, and the
  scrape that follows.
"""

from __future__ import annotations

import copy
import functools
import gc
import json
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from catalogue.exporter import IDENTITY_LABELS
from exporter.exposition import render
from exporter.families import FAMILIES
from exporter.sink import ClusterState
from exporter.store import MetricStore
from simulator.kinds import BY_KIND
from simulator.scenario import preset
from simulator.server import SimulatorServer


def fleet() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The objects of the simulator's ``f500`` preset (500 clusters x 100), as the API serves
    them: every kind, old-Flux clusters, tenants, shards, dependsOn chains."""
    with tempfile.TemporaryDirectory() as state_dir:
        sim = SimulatorServer(preset("f500"), state_dir=Path(state_dir))
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for name in sim.cluster_names:
            handle = sim.cluster(name)
            out[name] = {kind: handle.objects(kind) for kind in BY_KIND}
    return out


def served(kinds: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    return {kind: objs[0]["apiVersion"].rpartition("/")[2] for kind, objs in kinds.items() if objs}


def turned_failing(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "HealthCheckFailed",
            "message": "timeout waiting for: [Deployment/podinfo status: 'InProgress']",
            "lastTransitionTime": "2026-01-10T10:00:00Z",
            "observedGeneration": 1,
        }
    ]
    return obj


def build(wire: dict[str, dict[str, bytes]]) -> MetricStore:
    store = MetricStore(per_object="all", clock=time.time)
    for name, kinds in wire.items():
        decoded = {kind: json.loads(body) for kind, body in kinds.items()}
        store.cluster_changed(
            name,
            ClusterState(
                reachable=True, synced=True, last_full_sync=time.time(), served=served(decoded)
            ),
        )
        for kind, objs in decoded.items():
            store.replace(name, kind, objs)
    return store


def _median(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def baseline_registry(store: MetricStore) -> CollectorRegistry:
    """The same per-object series in labelled prometheus-client Gauges."""
    registry = CollectorRegistry(auto_describe=False)
    gauges = [
        Gauge(f.spec.name, f.spec.help, list(f.spec.labels), registry=registry) for f in FAMILIES
    ]
    for cl in store.clusters.values():
        for kd in cl.kinds.values():
            for state in kd.states.values():
                d = state.derived
                identity = (cl.name, d.kind, d.namespace, d.name)
                for family, gauge in zip(FAMILIES, gauges, strict=True):
                    if not family.applies_to(d.kind):
                        continue
                    for values, value in family.samples(state):
                        pad = len(family.spec.labels) - len(IDENTITY_LABELS) - len(values)
                        gauge.labels(*identity, *values, *([""] * pad)).set(value)
    return registry


def main() -> None:
    start = time.perf_counter()
    objects = fleet()
    total = sum(len(v) for kinds in objects.values() for v in kinds.values())
    print(f"simulator f500 fleet generated in {time.perf_counter() - start:.1f} s")
    kustomizations = [
        (name, turned_failing(kinds["Kustomization"][0]))
        for name, kinds in list(objects.items())[:100]
    ]
    # As the watch layer gets them: JSON off the wire, decoded per list.
    wire = {
        name: {k: json.dumps(v).encode() for k, v in kinds.items()}
        for name, kinds in objects.items()
    }
    del objects
    gc.collect()

    start = time.perf_counter()
    store = build(wire)
    build_time = time.perf_counter() - start

    tracemalloc.start()
    traced = build(wire)
    gc.collect()
    store_bytes = tracemalloc.get_traced_memory()[0]
    render(traced, "text")
    gc.collect()
    cache_bytes = tracemalloc.get_traced_memory()[0] - store_bytes
    tracemalloc.stop()
    del traced
    gc.collect()

    start = time.perf_counter()
    render(store, "text")
    first = time.perf_counter() - start  # every cache built, fresh memory

    def all_dirty() -> bytes:
        # As after a burst of events that touched every cluster since the last scrape.
        for cl in store.clusters.values():
            cl.chunks[:] = [None] * len(cl.chunks)
        return render(store, "text")

    cold, _ = _median(all_dirty, 5)
    ours, body = _median(lambda: render(store, "text"), 5)
    assert isinstance(body, bytes)
    series = body.count(b"\n") - body.count(b"\n#")
    print(
        f"objects: {total} in {len(store.clusters)} clusters; "
        f"store built in {build_time:.2f} s (JSON decode included)"
    )
    print(
        f"store memory (tracemalloc, raw objects dropped): {store_bytes / 2**20:.0f} MiB, "
        f"{store_bytes / total / 1024:.1f} KiB/object; scrape caches: {cache_bytes / 2**20:.0f} MiB"
    )
    print(f"exposition: {len(body) / 2**20:.1f} MiB, {series} samples")
    print(f"scrape (ours, render text, median of 5): {ours * 1000:.0f} ms")
    print(f"scrape with every cluster changed (median of 5): {cold * 1000:.0f} ms")
    print(f"first scrape after start (builds every cache): {first * 1000:.0f} ms")

    start = time.perf_counter()
    registry = baseline_registry(store)
    fill = time.perf_counter() - start
    theirs, base_body = _median(functools.partial(generate_latest, registry), 3)
    assert isinstance(base_body, bytes)
    print(f"baseline: Gauges filled in {fill:.2f} s, body {len(base_body) / 2**20:.1f} MiB")
    print(f"scrape (baseline generate_latest, median of 3): {theirs * 1000:.0f} ms")
    print(
        f"ratio baseline/ours: {theirs / ours:.1f}x warm, {theirs / cold:.1f}x all changed "
        "(target >= 20x, ours < 500 ms)"
    )
    del registry, base_body

    start = time.perf_counter()
    for cluster, obj in kustomizations:  # 100 Kustomizations in 100 clusters turn failing
        store.upsert(cluster, "Kustomization", obj)
    upserts = time.perf_counter() - start
    start = time.perf_counter()
    render(store, "text")
    after = time.perf_counter() - start
    print(f"scrape after those 100 events (100 clusters re-joined): {after * 1000:.0f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of the benchmark process: {peak:.0f} MiB "
        "(simulator fleet, JSON copies, two stores and the baseline registry at once)"
    )
    print(
        f"100 upserts (ready -> failing, with dependents): {upserts * 1000:.1f} ms "
        f"({upserts * 1e4:.0f} us/event)"
    )


if __name__ == "__main__":
    main()
