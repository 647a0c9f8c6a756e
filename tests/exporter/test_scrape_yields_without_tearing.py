"""The server's scrape yields to the event loop between clusters, yet never shows a torn set."""

from __future__ import annotations

import asyncio

from exporter.exposition import render, render_async
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import samples, series


def _store(clusters: int) -> MetricStore:
    store = MetricStore(clock=lambda: o.T0_UNIX)
    for c in range(clusters):
        store.replace(f"c{c}", "Kustomization", [o.kustomization(f"old-{i}") for i in range(10)])
    return store


async def test_same_body_as_the_synchronous_render() -> None:
    store = _store(30)
    assert await render_async(store, "text", clusters_per_step=4) == render(store, "text")


async def test_a_replace_between_steps_shows_old_or_new_never_a_mix() -> None:
    store = _store(40)
    started = asyncio.Event()

    async def relist_meanwhile() -> None:
        await started.wait()
        for c in reversed(range(40)):  # meets the scrape, which goes the other way
            new = [o.kustomization(f"new-{i}") for i in range(12)]
            store.replace(f"c{c}", "Kustomization", new)
            await asyncio.sleep(0)

    async def scrape() -> bytes:
        started.set()
        return await render_async(store, "text", clusters_per_step=1)

    body, _ = await asyncio.gather(scrape(), relist_meanwhile())
    data = samples(body.decode())
    seen_new = 0
    for c in range(40):
        names = {s["name"] for s in series(data, "flux_resource_status", cluster=f"c{c}")}
        assert names in ({f"old-{i}" for i in range(10)}, {f"new-{i}" for i in range(12)})
        seen_new += names == {f"new-{i}" for i in range(12)}
    assert 0 < seen_new < 40  # the relist really ran while the scrape was in progress
