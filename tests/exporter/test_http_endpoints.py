"""The HTTP app over real HTTP on 127.0.0.1: negotiation, gzip, readiness, status page."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge

from exporter.server import GZIP_IN_THREAD_BYTES, build_app
from exporter.sink import ClusterState
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.fleet import full_store
from tests.exporter.kube.conftest import eventually
from tests.exporter.scrape import samples, value

OM = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def served() -> AsyncIterator[tuple[MetricStore, str, aiohttp.ClientSession]]:
    store = full_store()
    registry = CollectorRegistry()
    Gauge("fluxwatch_exporter_kube_marker", "Marker from another registry.", registry=registry).set(
        7
    )
    runner, base = await _serve(build_app(store, [registry]))
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield store, base, session
    await runner.cleanup()


async def test_text_format_by_default(
    served: tuple[MetricStore, str, aiohttp.ClientSession],
) -> None:
    _, base, session = served
    async with session.get(f"{base}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "Content-Encoding" not in resp.headers
        data = samples(await resp.text())
    assert value(data, "fluxwatch_exporter_kube_marker") == 7
    assert value(data, "flux_cluster_reachable", cluster="prod-eu") == 0


async def test_openmetrics_gzip(served: tuple[MetricStore, str, aiohttp.ClientSession]) -> None:
    _, base, session = served
    headers = {"Accept": OM, "Accept-Encoding": "gzip"}
    async with session.get(f"{base}/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith(
            "application/openmetrics-text; version=1.0.0"
        )
        assert resp.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(await resp.read()).decode()
    assert body.endswith("# EOF\n")
    data = samples(body, openmetrics=True)
    assert value(data, "flux_resource_transitions_total", cluster="prod-eu", to="failing") == 1


async def test_scrape_duration_is_recorded(
    served: tuple[MetricStore, str, aiohttp.ClientSession],
) -> None:
    store, base, session = served
    for _ in range(2):
        async with session.get(f"{base}/metrics") as resp:
            await resp.read()
    reg = store.metrics.registry
    assert reg.get_sample_value("fluxwatch_exporter_scrape_duration_seconds_count") == 2


async def test_health_and_status_page(
    served: tuple[MetricStore, str, aiohttp.ClientSession],
) -> None:
    _, base, session = served
    async with session.get(f"{base}/healthz") as resp:
        assert resp.status == 200
    async with session.get(f"{base}/") as resp:
        page = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "<td>prod-eu</td><td>NO</td>" in page
    assert "odd &quot;name&quot;" in page


async def test_readyz_waits_for_every_reachable_cluster() -> None:
    store = MetricStore()
    runner, base = await _serve(build_app(store))
    try:
        async with aiohttp.ClientSession() as session:

            async def status() -> int:
                async with session.get(f"{base}/readyz") as resp:
                    return resp.status

            async def text() -> str:
                async with session.get(f"{base}/readyz") as resp:
                    return await resp.text()

            assert await status() == 503  # nothing reported yet
            store.cluster_changed("a", ClusterState(reachable=True, synced=False))
            store.cluster_changed("b", ClusterState(reachable=True, synced=True))
            assert await status() == 503
            assert await text() == (
                "not ready: 1/2 clusters synced; waiting for the first sync of a\n"
            )
            store.cluster_changed("a", ClusterState(reachable=False, synced=False))
            assert await status() == 200  # an unreachable cluster does not hold readiness
            assert await text() == "ready: 1/2 clusters synced; not synced: a (NO)\n"
            store.cluster_changed(
                "a", ClusterState(reachable=False, synced=False, auth_failed=True)
            )
            assert await text() == (
                "ready: 1/2 clusters synced; not synced: a (NO: credentials rejected)\n"
            )
            store.cluster_changed("a", ClusterState(reachable=True, synced=True))
            store.upsert("a", "GitRepository", o.git_repository())
            assert await status() == 200
            assert await text() == "ready: 2/2 clusters synced\n"
            async with session.get(f"{base}/") as resp:
                assert "2/2 clusters synced" in await resp.text()
    finally:
        await runner.cleanup()


class _GatedExecutor(ThreadPoolExecutor):
    """The loop's default executor, holding back each body compression until the event loop
    has been seen running meanwhile: a compression done on the loop would never get here."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.compressions = 0
        self.loop_ran = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if getattr(fn, "__name__", "") != "compress_parts":
            return super().submit(fn, *args, **kwargs)
        self.compressions += 1

        def gated() -> Any:
            if not self.loop_ran.wait(30):  # a safety net: the loop sets it at once
                raise AssertionError("the event loop did not run while compressing")
            return fn(*args, **kwargs)

        return super().submit(gated)


@pytest.mark.parametrize(("objects", "in_executor"), [(1500, True), (3, False)])
async def test_large_bodies_are_compressed_off_the_loop_and_intact(
    objects: int, in_executor: bool
) -> None:
    store = MetricStore()
    store.replace("c1", "Kustomization", [o.kustomization(f"app-{i}") for i in range(objects)])
    executor = _GatedExecutor()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(executor)
    runner, base = await _serve(build_app(store))
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:

            async def scrape() -> bytes:
                headers = {"Accept-Encoding": "gzip"}
                async with session.get(f"{base}/metrics", headers=headers) as resp:
                    assert resp.headers["Content-Encoding"] == "gzip"
                    return await resp.read()

            scraping = asyncio.create_task(scrape())
            if in_executor:
                # The loop runs this while the compression waits in its worker thread.
                await eventually(lambda: executor.compressions == 1)
                executor.loop_ran.set()
            raw = await scraping
        body = gzip.decompress(raw)
        assert (len(body) > GZIP_IN_THREAD_BYTES) is in_executor
        assert executor.compressions == (1 if in_executor else 0)
        data = samples(body.decode())
        assert (
            value(data, "flux_cluster_resources", kind="Kustomization", status="ready") == objects
        )
    finally:
        await runner.cleanup()
        executor.loop_ran.set()
        executor.shutdown()
