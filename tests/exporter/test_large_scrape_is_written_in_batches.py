"""A /metrics body larger than one write batch arrives whole, plain and gzipped, over HTTP."""

from __future__ import annotations

import gzip

import aiohttp
from aiohttp import web

from exporter.exposition import render
from exporter.server import WRITE_BATCH_BYTES, build_app
from exporter.sink import ClusterState
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import samples

OBJECTS_PER_CLUSTER = 1_500


def _large_store() -> MetricStore:
    store = MetricStore(per_object="all", compat_info=True)
    for cluster in ("prod-eu", "prod-us"):
        store.cluster_changed(cluster, ClusterState(reachable=True, synced=True))
        store.replace(
            cluster,
            "Kustomization",
            [
                o.kustomization(f"app-{i:05d}", namespace=f"team-{i % 40}")
                for i in range(OBJECTS_PER_CLUSTER)
            ],
        )
    return store


def _flux_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # The exporter's own self-metrics (scrape duration) change between scrapes; the Flux
    # families must be identical.
    return {key: v for key, v in samples(text).items() if key[0].startswith("flux_")}


async def test_large_body_arrives_whole_plain_and_gzipped() -> None:
    store = _large_store()
    expected = _flux_samples(render(store).decode())
    assert len(render(store)) > 3 * WRITE_BATCH_BYTES  # the body really spans several writes

    runner = web.AppRunner(build_app(store))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.get(
                f"{base}/metrics", headers={"Accept-Encoding": "identity"}
            ) as resp:
                plain = await resp.read()
                assert resp.content_length == len(plain)
            async with session.get(f"{base}/metrics", headers={"Accept-Encoding": "gzip"}) as resp:
                assert resp.headers["Content-Encoding"] == "gzip"
                zipped = gzip.decompress(await resp.read())
    finally:
        await runner.cleanup()

    assert _flux_samples(plain.decode()) == expected
    assert _flux_samples(zipped.decode()) == expected
    assert len(expected) > 10 * OBJECTS_PER_CLUSTER
