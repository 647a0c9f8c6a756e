"""Assembles the exporter: settings -> cluster sources -> watches feeding the store -> HTTP.

``Exporter`` is what ``fluxwatch exporter``, ``fluxwatch run`` and ``fluxwatch demo`` start. It is
an async context manager (tests and the demo need the bound address before anything else), and
``run_exporter`` runs one until cancelled. Transitions reach the notification bridge through the
``transition_sink`` hook; the exporter never imports the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import socket
import time
from collections.abc import Callable
from types import TracebackType

from prometheus_client import CollectorRegistry

from exporter.kube.clusters import static_clusters
from exporter.kube.fleet import Fleet, plan_shards
from exporter.kube.health import WatchHealth
from exporter.publisher import TransitionPublisher
from exporter.selfmetrics import SelfMetrics
from exporter.server import build_app
from exporter.settings import ExporterSettings, parse_listen
from exporter.sink import FluxObjectSink
from exporter.store import MetricStore
from exporter.transitions import TransitionSink
from plumbing.http_server import HttpServer

log = logging.getLogger(__name__)


class Exporter:
    """One exporter process's worth of parts, started and stopped together.

    ``sink`` replaces the metric store (the benchmark's baseline uses it); normally it is left
    out and ``store`` is the ``MetricStore`` serving ``/metrics``.
    """

    def __init__(
        self,
        settings: ExporterSettings,
        *,
        transition_sink: TransitionSink | None = None,
        hostname: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.self_metrics = SelfMetrics()
        self.publisher = TransitionPublisher(transition_sink, self.self_metrics)
        self.store = MetricStore(
            per_object=settings.per_object,
            compat_info=settings.gotk_resource_info,
            metrics=self.self_metrics,
            publisher=self.publisher,
            clock=clock,
        )
        self.watch_registry = CollectorRegistry(auto_describe=True)
        self.health = WatchHealth(self.watch_registry)
        self.clock = clock
        self.rng = rng
        self.fleet: Fleet | None = None
        self._server: HttpServer | None = None
        self._fleet_task: asyncio.Task[None] | None = None
        self._freeze_task: asyncio.Task[None] | None = None
        self.host, self.port = parse_listen(settings.listen)

    @property
    def sink(self) -> FluxObjectSink:
        return self.store

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (valid after ``start``)."""
        if self._server is not None:
            return self._server.url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def ready(self) -> bool:
        """Every cluster answered once, and every reachable one finished its first sync."""
        if self.fleet is None or not self.fleet.started:
            return False
        _, pending, _, _ = self.fleet.progress()
        return pending == 0

    async def start(self) -> None:
        """Resolves the cluster sources (raising on bad ones), serves HTTP, starts watching."""
        specs = static_clusters(self.settings)
        plan = plan_shards(self.settings, len(specs), self.hostname)
        if plan.total_shards > 1:
            log.info(
                "shard %d of %d, splitting %s",
                plan.shard,
                plan.total_shards,
                "clusters" if plan.by == "cluster" else "objects by uid",
            )
        self.fleet = Fleet(
            self.settings, self.store, self.health, plan, specs, self.clock, self.rng
        )
        app = build_app(
            self.store,
            [self.watch_registry],  # the store's own registry is always rendered first
            ready=self.ready,
            publisher=self.publisher,
        )
        self._server = HttpServer(app, self.host, self.port, name="exporter")
        await self._server.start()  # raises ListenError with nothing left open
        self.port = self._server.port  # the real port when 0 was asked for
        self.fleet.start()
        self._fleet_task = asyncio.create_task(self.fleet.run(), name="fleet")
        self._freeze_task = asyncio.create_task(self._freeze_after_sync(), name="gc freeze")

    async def _freeze_after_sync(self) -> None:
        """Keeps what the initial sync builds out of the garbage collector's sight.

        The store holds millions of small long-lived objects for a large fleet. A full
        collection walks them all with the loop stopped (600 ms at 50,000 objects, measured by
        bench/exporter_sync.py): during the initial sync the heap grows by 25% again and again,
        triggering one after another, and afterwards each one was a worst-case event-to-metric
        latency. Freezing moves the survivors to the permanent generation; they are still freed by
        reference counting when replaced, so the cost is only cyclic garbage that had already
        survived into the oldest generation when a freeze happened.
        """
        while True:
            ready = self.ready()
            if ready:
                gc.collect()
            gc.freeze()
            if ready:
                return
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._freeze_task is not None:
            self._freeze_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._freeze_task
            self._freeze_task = None
        if self._fleet_task is not None:
            self._fleet_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fleet_task
            self._fleet_task = None
        if self._server is not None:
            await self._server.stop()

    async def __aenter__(self) -> Exporter:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_exporter(
    settings: ExporterSettings, transition_sink: TransitionSink | None = None
) -> None:
    """Runs the exporter until cancelled (SIGINT/SIGTERM in the CLI)."""
    async with Exporter(settings, transition_sink=transition_sink):
        await asyncio.Event().wait()
