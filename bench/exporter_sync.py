"""Exporter watch-layer benchmark on the ``f500`` preset (500 clusters, 50,000 objects).

The simulator runs in a subprocess (this module with ``--simulator``) so the CPU and memory
figures below are the exporter's alone; the exporter is the real pipeline (kubeconfig -> one
client per context -> discovery -> list/watch -> ``MetricStore``) in this process. Figures:

- initial sync: from start until every cluster has listed every served kind;
- peak RSS of this process (the exporter) after the sync and after the churn, and after three
  ``/metrics`` scrapes over HTTP (plain, gzip, plain; the body read and dropped in chunks), since
  the joined-lines cache and the response are part of a scraped exporter's real peak;
- CPU of this process while the simulator applies 100 status changes per second, against the
  same window with no changes (baseline: bookmarks and timers only);
- event-to-metric latency: from the simulator applying a change (its wall clock, stamped in an
  annotation) to the store having re-rendered that object's lines (same machine, same clock);
- baseline for the initial sync: listing the same 7,500 (cluster, kind) collections with the
  stock high-level client (``CustomObjectsApi``), one request each, into plain dicts.

Targets (issue 3): initial sync < 30 s, peak RSS < 600 MiB, p99 latency < 0.5 s.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STAMP = "bench.fluxwatch.io/applied-at"
CHURN_RATE = 100.0  # status changes per second
CHURN_SECONDS = 20.0
IDLE_SECONDS = 10.0
BASELINE_CLUSTERS = 50  # the stock client is slow: a sample, scaled to the fleet


# ---- the simulator side (subprocess) -----------------------------------------------------------


async def _simulator(state_dir: str) -> None:
    from simulator.scenario import preset
    from simulator.server import SimulatorServer

    started = time.perf_counter()
    async with SimulatorServer(
        preset(os.environ.get("BENCH_PRESET", "f500"), seed=1),
        state_dir=Path(state_dir),
        bookmark_interval=30.0,
    ) as sim:
        built = time.perf_counter() - started
        targets: list[tuple[str, str, str, str]] = []
        for name in sim.cluster_names:
            handle = sim.cluster(name)
            for kind in ("Kustomization", "HelmRelease", "GitRepository"):
                for obj in handle.objects(kind)[:3]:
                    meta = obj["metadata"]
                    targets.append((name, kind, meta["namespace"], meta["name"]))
        stats = sim.stats()
        print(
            json.dumps(
                {
                    "ready": str(sim.kubeconfig_path),
                    "objects": stats["objects"],
                    "clusters": stats["clusters"],
                    "build_seconds": built,
                }
            ),
            flush=True,
        )
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        rng = random.Random(7)
        while True:
            line = (await reader.readline()).decode().split()
            if not line or line[0] == "stop":
                return
            if line[0] == "churn":
                rate, seconds = float(line[1]), float(line[2])
                applied = await _churn(sim, targets, rng, rate, seconds)
                print(json.dumps({"applied": applied}), flush=True)


async def _churn(
    sim: Any, targets: list[tuple[str, str, str, str]], rng: random.Random, rate: float, span: float
) -> int:
    """Flips Ready on random objects at ``rate`` per second, stamping each change's wall time."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    applied = 0
    while loop.time() - start < span:
        due = int((loop.time() - start) * rate) + 1
        while applied < due:
            cluster, kind, namespace, name = rng.choice(targets)
            handle = sim.cluster(cluster)
            obj = handle.get(kind, namespace, name)
            if obj is None:
                continue
            ready = next(
                (c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"),
                None,
            )
            if ready is None:
                continue
            failing = ready["status"] == "True"
            ready.update(
                status="False" if failing else "True",
                reason="BuildFailed" if failing else "ReconciliationSucceeded",
                message=f"bench change {applied}",
            )
            obj["metadata"].setdefault("annotations", {})[STAMP] = repr(time.time())
            handle.apply(obj)
            applied += 1
        await asyncio.sleep(0.005)
    return applied


# ---- the exporter side (this process) ----------------------------------------------------------


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


async def _baseline_list(
    kubeconfig: str, clusters: list[str], served: dict[str, dict[str, str]]
) -> float:
    """The stock client: one CustomObjectsApi list per (cluster, kind), no paging, no watch."""
    from kubernetes_asyncio import client, config

    from exporter.kinds import KINDS_BY_NAME

    gate = asyncio.Semaphore(64)

    async def one(cluster: str) -> int:
        api = await config.new_client_from_config(config_file=kubeconfig, context=cluster)
        count = 0
        async with api:
            custom = client.CustomObjectsApi(api)
            for kind, api_version in served[cluster].items():
                group, version = api_version.split("/")
                async with gate:
                    doc = await custom.list_cluster_custom_object(
                        group, version, KINDS_BY_NAME[kind].plural
                    )
                count += len(doc["items"])
        return count

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in clusters[:BASELINE_CLUSTERS]))
    return (time.perf_counter() - started) * len(clusters) / BASELINE_CLUSTERS


async def _exporter(kubeconfig: str, sim: subprocess.Popen[str]) -> dict[str, Any]:
    from exporter.app import Exporter
    from exporter.settings import ExporterSettings

    settings = ExporterSettings(
        listen="127.0.0.1:0", kubeconfig=kubeconfig, progress_log_interval_seconds=5.0
    )
    exporter = Exporter(settings)
    latencies: list[float] = []
    upsert = exporter.store.upsert

    def timed_upsert(cluster: str, kind: str, obj: Any) -> None:
        upsert(cluster, kind, obj)
        stamp = (obj.get("metadata", {}).get("annotations") or {}).get(STAMP)
        if stamp is not None:
            latencies.append(time.time() - float(stamp))

    exporter.store.upsert = timed_upsert  # type: ignore[method-assign]
    figures: dict[str, Any] = {}
    pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append(time.perf_counter() - gc_started[0])

    gc.callbacks.append(on_gc)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with exporter:
        await _until(exporter.ready, 600)
        figures["sync_seconds"] = time.perf_counter() - wall0
        figures["sync_cpu_seconds"] = time.process_time() - cpu0
        figures["objects"] = exporter.store.object_count()
        figures["clusters"] = len(exporter.store.clusters)
        figures["rss_after_sync_mib"] = _rss_mib()
        await asyncio.sleep(3)  # the exporter freezes the synced heap out of the GC
        sync_pauses = len(pauses)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        figures["idle_cpu_percent"] = (
            100 * (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        )

        assert sim.stdin is not None
        assert sim.stdout is not None
        sim.stdin.write(f"churn {CHURN_RATE} {CHURN_SECONDS}\n")
        sim.stdin.flush()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        reply = await asyncio.get_running_loop().run_in_executor(None, sim.stdout.readline)
        wall = time.perf_counter() - wall0
        figures["churn_cpu_percent"] = 100 * (time.process_time() - cpu0) / wall
        figures["applied"] = json.loads(reply)["applied"]
        applied = figures["applied"]
        await _until(lambda: len(latencies) >= applied, 5)
        figures["observed"] = len(latencies)
        figures["rss_peak_mib"] = _rss_mib()
        figures["scrape_seconds"], figures["scrape_bytes"] = await _scrapes(exporter.url)
        figures["rss_scraped_mib"] = _rss_mib()
        served = {
            name: dict(runner.state.served)
            for name, (runner, _) in (exporter.fleet.runners.items() if exporter.fleet else [])
        }
    gc.callbacks.remove(on_gc)
    figures["gc_pauses_sync"] = pauses[:sync_pauses]
    figures["gc_pauses_churn"] = pauses[sync_pauses:]
    figures["latencies"] = sorted(latencies)
    figures["served"] = served
    return figures


async def _scrapes(url: str) -> tuple[list[float], int]:
    """Scrapes /metrics as Prometheus would (plain, then gzip, then plain again): the joined-lines
    cache a scrape builds and the response body are part of the exporter's real peak."""
    import aiohttp

    took: list[float] = []
    size = 0
    async with aiohttp.ClientSession() as session:
        for encoding in ("identity", "gzip", "identity"):
            started = time.perf_counter()
            async with session.get(
                f"{url}/metrics", headers={"Accept-Encoding": encoding}, auto_decompress=False
            ) as response:
                # Read and drop: holding the body here would count it twice in this process.
                length = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    length += len(chunk)
            took.append(time.perf_counter() - started)
            size = max(size, length)
    return took, size


async def _until(check: Any, within: float) -> bool:
    """Polls ``check`` every 50 ms; False when ``within`` seconds pass first."""
    deadline = time.perf_counter() + within
    while True:
        if check():
            return True
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.05)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    logging.basicConfig(
        level=logging.INFO if os.environ.get("BENCH_VERBOSE") else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    with tempfile.TemporaryDirectory() as state_dir:
        sim = subprocess.Popen(
            [sys.executable, "-m", "bench.exporter_sync", "--simulator", state_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            assert sim.stdout is not None
            assert sim.stdin is not None
            hello = json.loads(sim.stdout.readline())
            print(
                f"simulator (subprocess): {hello['clusters']} clusters, {hello['objects']} "
                f"objects, built in {hello['build_seconds']:.1f} s",
                flush=True,
            )
            figures = asyncio.run(_exporter(hello["ready"], sim))
            baseline = asyncio.run(
                _baseline_list(hello["ready"], sorted(figures["served"]), figures["served"])
            )
            sim.stdin.write("stop\n")
            sim.stdin.flush()
            sim.wait(timeout=60)
        finally:
            if sim.poll() is None:
                sim.kill()
                sim.wait()
    lat = figures["latencies"]
    print(
        f"initial sync: {figures['sync_seconds']:.1f} s for {figures['clusters']} clusters, "
        f"{figures['objects']} objects (target < 30 s; CPU {figures['sync_cpu_seconds']:.1f} s)"
    )
    print(
        f"baseline, stock CustomObjectsApi lists only (no watches, no store; {BASELINE_CLUSTERS} "
        f"clusters, scaled to {figures['clusters']}): {baseline:.1f} s; the exporter is "
        f"{baseline / figures['sync_seconds']:.1f}x faster"
    )
    print(
        f"peak RSS: {figures['rss_after_sync_mib']:.0f} MiB after sync, "
        f"{figures['rss_peak_mib']:.0f} MiB after churn (target < 600 MiB)"
    )
    scrapes = ", ".join(f"{t:.2f}" for t in figures["scrape_seconds"])
    print(
        f"RSS after three /metrics scrapes (plain, gzip, plain; {scrapes} s; "
        f"largest body {figures['scrape_bytes'] / 2**20:.0f} MiB): "
        f"{figures['rss_scraped_mib']:.0f} MiB (the joined-lines cache and the response body "
        f"come on top of the watch-only peak)"
    )
    print(
        f"CPU at {CHURN_RATE:.0f} status changes/s: {figures['churn_cpu_percent']:.1f}% of one "
        f"core; idle baseline {figures['idle_cpu_percent']:.1f}% "
        f"({figures['applied']} changes applied, {figures['observed']} observed)"
    )
    print(
        f"event-to-metric latency: p50 {1000 * _pct(lat, 0.5):.1f} ms, "
        f"p99 {1000 * _pct(lat, 0.99):.1f} ms, max {1000 * (max(lat) if lat else 0):.1f} ms "
        f"(target p99 < 500 ms)"
    )
    if lat:
        print(f"  mean {1000 * statistics.fmean(lat):.1f} ms over {len(lat)} changes")
    for phase in ("sync", "churn"):
        pauses = figures[f"gc_pauses_{phase}"]
        worst = 1000 * max(pauses) if pauses else 0.0
        print(f"full GC collections during {phase}: {len(pauses)}, longest {worst:.0f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--simulator":
        os.environ.setdefault("PYTHONHASHSEED", "0")
        asyncio.run(_simulator(sys.argv[2]))
    else:
        main()
