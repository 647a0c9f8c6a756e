"""A 500-cluster fleet rollout through the bridge's exporter path, with its commit statuses.

Three "shards" (the load generator, in this process) report 500 clusters x 20 applier objects to
a bridge over HTTP with the token, then one commit rolls out: 10 clusters apply it per report
round. Printed: the time and bridge-side cost of a full-fleet report and of a rollout step, how
many commit statuses reached (a local fake) GitHub for the whole rollout (GitHub caps a commit
and context at 1,000), and the same step's cost with only parsing (the ceiling, no storage) as
the baseline measured in the same run. The bridge runs twice: with the rollout state in
``rollouts.sqlite3``, then in a local PostgreSQL 15 (fsync on) as with ``bridge.outbox.postgres``.

Environment: ``BENCH_ROLLOUT_CLUSTERS`` (500), ``BENCH_ROLLOUT_OBJECTS`` (20).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from notifiers.app import Bridge
from notifiers.config import config_from_mapping
from notifiers.rolloutservice import parse_report
from tests.pipelines.githosts import FakeGitHub

CLUSTERS = int(os.environ.get("BENCH_ROLLOUT_CLUSTERS", "500"))
OBJECTS = int(os.environ.get("BENCH_ROLLOUT_OBJECTS", "20"))
SHARDS = 3
TOKEN = "bench-token"
A, B = "main@sha1:" + "a" * 40, "main@sha1:" + "b" * 40


def objects(revision_of_first: str, wanted: str = "") -> list[dict[str, Any]]:
    out = []
    for i in range(OBJECTS):
        applied = revision_of_first if i == 0 else A
        out.append(
            {
                "kind": "Kustomization",
                "namespace": "apps",
                "name": f"app-{i:02d}",
                "applied": applied,
                "attempted": wanted or applied if i == 0 else applied,
                "wanted": wanted if i == 0 else "",
                "status": "ready",
                "reason": "ReconciliationSucceeded",
                "message": "",
                "applied_at": None,
                "source_url": "https://github.com/acme/apps.git",
            }
        )
    return out


def report(shard: int, clusters: dict[str, list[dict[str, Any]]]) -> bytes:
    doc = {
        "shard": shard,
        "total_shards": SHARDS,
        "synced": True,
        "clusters": [{"cluster": c, "objects": o} for c, o in sorted(clusters.items())],
    }
    return json.dumps(doc).encode()


def shard_of(index: int) -> int:
    return index % SHARDS


async def main_async(store: str = "sqlite", postgres_dsn: str = "") -> None:
    names = [f"prod-{i:04d}" for i in range(CLUSTERS)]
    github = await FakeGitHub(token="gh").start()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "token").write_text(TOKEN)
        (base / "gh").write_text("gh")
        config = config_from_mapping(
            {
                "bridge": {
                    "listen": "127.0.0.1:0",
                    "state_dir": str(base / "state"),
                    "exporters": {"token_file": str(base / "token")},
                    "rollouts": {"status_interval": "2s"},
                    **postgres_outbox(base, postgres_dsn),
                    "destinations": {
                        "github": {
                            "type": "github",
                            "base_url": github.url,
                            "hosts": ["github.com"],
                            "token_file": str(base / "gh"),
                            "objects": ["Kustomization/apps/app-00"],
                        }
                    },
                }
            },
            base_dir=base,
        )
        bridge = Bridge(config)
        await bridge.start()
        url = f"http://127.0.0.1:{bridge.port}/exporter/v1/rollouts"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as http:

            async def post(body: bytes) -> float:
                start = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 202, await resp.text()
                return time.perf_counter() - start

            full = {n: objects(A) for n in names}
            cpu0, t0 = time.process_time(), time.perf_counter()
            for shard in range(SHARDS):
                await post(
                    report(
                        shard,
                        {n: o for i, (n, o) in enumerate(full.items()) if shard_of(i) == shard},
                    )
                )
            full_wall, full_cpu = time.perf_counter() - t0, time.process_time() - cpu0
            print(
                f"[{store}] full-fleet report ({CLUSTERS} clusters x {OBJECTS} objects): "
                f"{full_wall * 1000:.0f} ms wall, {full_cpu * 1000:.0f} ms CPU"
            )

            # Every cluster learns of commit B, then 10 clusters apply it per round.
            for shard in range(SHARDS):
                await post(
                    report(
                        shard,
                        {n: objects(A, B) for i, n in enumerate(names) if shard_of(i) == shard},
                    )
                )
            steps: list[float] = []
            cpu_steps: list[float] = []
            baseline: list[float] = []
            rollout_start = time.perf_counter()
            for start in range(0, CLUSTERS, 10):
                batch = names[start : start + 10]
                by_shard: dict[int, dict[str, list[dict[str, Any]]]] = {}
                for n in batch:
                    by_shard.setdefault(shard_of(names.index(n)), {})[n] = objects(B)
                for shard, clusters in by_shard.items():
                    body = report(shard, clusters)
                    b0 = time.process_time()
                    parse_report(json.loads(body), 0.0)  # the ceiling: parse, store nothing
                    baseline.append(time.process_time() - b0)
                    c0 = time.process_time()
                    steps.append(await post(body))
                    cpu_steps.append(time.process_time() - c0)
            publisher = bridge.rollouts.statuses
            for _ in range(2400):  # poll, at most 2 minutes
                if await publisher.idle():
                    break
                await asyncio.sleep(0.05)
            statuses = github.statuses("b" * 40).get(
                "fluxwatch/fleet/Kustomization/apps/app-00", []
            )
            while not statuses or statuses[-1]["state"] != "success":
                await asyncio.sleep(0.05)
                statuses = github.statuses("b" * 40).get(
                    "fluxwatch/fleet/Kustomization/apps/app-00", []
                )
            rollout_wall = time.perf_counter() - rollout_start
        await bridge.stop()
    await github.stop()
    p50 = statistics.median(steps) * 1000
    p99 = sorted(steps)[int(len(steps) * 0.99) - 1] * 1000
    cpu = statistics.median(cpu_steps) * 1000
    base_cpu = statistics.median(baseline) * 1000
    print(
        f"[{store}] rollout step (10 clusters, one shard's report): p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, "
        f"CPU {cpu:.2f} ms (parse-only baseline {base_cpu:.2f} ms, ratio {cpu / base_cpu:.1f}x)"
    )
    print(
        f"[{store}] rollout of {CLUSTERS} clusters: {rollout_wall:.1f} s wall; GitHub statuses "
        f"for the fleet context: {len(statuses)} (cap 1,000), last: {statuses[-1]['description']!r}"
    )


def exporter_scan() -> None:
    """The exporter's side: one rollout scan of 500 clusters' applier objects (the store filled
    with CLUSTERS x OBJECTS Kustomizations), unchanged and after one cluster changed."""
    from exporter.rollouts import RolloutTracker
    from exporter.selfmetrics import SelfMetrics
    from exporter.sink import ClusterState
    from exporter.store import MetricStore
    from tests.exporter.objects import git_repository, kustomization

    store = MetricStore(per_object="all", metrics=SelfMetrics())
    names = [f"prod-{i:04d}" for i in range(CLUSTERS)]
    for name in names:
        store.replace(name, "GitRepository", [git_repository("app")])
        store.replace(
            name, "Kustomization", [kustomization(f"app-{j:02d}", "app") for j in range(OBJECTS)]
        )
        store.cluster_changed(name, ClusterState(reachable=True, synced=True))
    got: list[int] = []
    tracker = RolloutTracker(store, type("R", (), {"report": lambda s, c, y: got.append(len(c))})(),
                             lambda: True)  # fmt: skip
    t0 = time.perf_counter()
    tracker.scan()
    first = time.perf_counter() - t0
    quiet = []
    for _ in range(5):
        t0 = time.perf_counter()
        tracker.scan()
        quiet.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    walked = sum(len(kd.states) for cl in store.clusters.values() for kd in cl.kinds.values())
    walk = time.perf_counter() - t0
    print(
        f"exporter rollout scan ({CLUSTERS} clusters x {OBJECTS} objects, once a second): "
        f"first {first * 1000:.0f} ms (reported {got[0]} clusters), "
        f"unchanged {min(quiet) * 1000:.0f} ms; "
        f"walking the same {walked} states alone {walk * 1000:.1f} ms"
    )


def postgres_outbox(base: Path, dsn: str) -> dict[str, Any]:
    if not dsn:
        return {}
    (base / "outbox.dsn").write_text(dsn)
    return {"outbox": {"postgres": {"dsn_file": str(base / "outbox.dsn")}}}


async def replicas_storing(dsn: str, base: Path) -> None:
    """Rollout steps stored by one replica's store, then by two at once on the same database
    (both in this process, each with its own session): rollout writes take one lock in turn,
    so a second replica adds no report throughput, and the ratio shows what taking turns costs."""
    from notifiers.pgstore import PostgresSettings
    from notifiers.rolloutpg import PostgresRolloutStore
    from notifiers.rollouts import parse_object

    (base / "replicas.dsn").write_text(dsn)
    settings = PostgresSettings(dsn_file=base / "replicas.dsn")
    names = [f"prod-{i:04d}" for i in range(CLUSTERS)]

    def step(batch: list[str], revision: str) -> dict[str, list[Any]]:
        return {n: [parse_object(o, n, 0.0, "bench") for o in objects(revision)] for n in batch}

    stores = [PostgresRolloutStore(settings), PostgresRolloutStore(settings)]
    for store in stores:
        store.open()
    try:
        await stores[0].report(
            shard=0, total_shards=1, synced=True, clusters=step(names, A), now=0.0
        )
        batches = [names[i : i + 10] for i in range(0, CLUSTERS, 10)]
        rates: list[float] = []
        for revision, used in ((B, stores[:1]), ("main@sha1:" + "c" * 40, stores)):

            async def store_batches(
                i: int, every: int, store: PostgresRolloutStore, rev: str
            ) -> None:
                for batch in batches[i::every]:
                    await store.report(
                        shard=0, total_shards=1, synced=True, clusters=step(batch, rev), now=1.0
                    )

            t0 = time.perf_counter()
            await asyncio.gather(
                *(store_batches(i, len(used), s, revision) for i, s in enumerate(used))
            )
            rates.append(len(batches) / (time.perf_counter() - t0))
    finally:
        for store in stores:
            store.close()
    print(
        f"[postgres] rollout steps stored ({CLUSTERS} clusters, 10 per report): "
        f"1 replica {rates[0]:.0f} reports/s, 2 replicas at once {rates[1]:.0f} reports/s "
        f"(ratio {rates[1] / rates[0]:.2f}: one rollout writer at a time)"
    )


def main() -> None:
    from tests.postgres import running_postgres

    exporter_scan()
    asyncio.run(main_async())
    with running_postgres(durable=True) as server, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main_async("postgres", server.dsn(server.new_database())))
        asyncio.run(replicas_storing(server.dsn(server.new_database()), Path(tmp)))
