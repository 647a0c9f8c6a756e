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
import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from prometheus_client import CollectorRegistry

from exporter.bridgeclient import BridgeClient, ShardIdentity
from exporter.kube.clusters import static_clusters
from exporter.kube.fleet import Fleet, plan_shards
from exporter.kube.health import WatchHealth
from exporter.publisher import TransitionPublisher
from exporter.rollouts import RolloutReporter, RolloutTracker
from exporter.selfmetrics import SelfMetrics
from exporter.server import build_app
from exporter.settings import ExporterSettings, SettingsError, parse_listen
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
        rollout_reporter: RolloutReporter | None = None,
        hostname: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.self_metrics = SelfMetrics()
        # A remote bridge (--bridge-url) when nothing in-process was handed in.
        self.bridge_client: BridgeClient | None = None
        if transition_sink is None and rollout_reporter is None and settings.bridge_url:
            self.bridge_client = BridgeClient(
                settings.bridge_url,
                read_bridge_token(settings),
                self.self_metrics,
                buffer_size=settings.bridge_buffer_size,
            )
            transition_sink = rollout_reporter = self.bridge_client
        self.publisher = TransitionPublisher(transition_sink, self.self_metrics)
        self.store = MetricStore(
            per_object=settings.per_object,
            compat_info=settings.gotk_resource_info,
            metrics=self.self_metrics,
            publisher=self.publisher,
            clock=clock,
        )
        self.rollouts = RolloutTracker(self.store, rollout_reporter, self.ready)
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

    def sync_counts(self) -> tuple[int, int]:
        """Clusters synced and clusters configured (this replica's share when sharded)."""
        if self.fleet is None:
            return 0, 0
        synced, _, configured, _ = self.fleet.progress()
        return synced, configured

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
            [self.watch_registry, self.rollouts.registry],  # the store's is always first
            ready=self.ready,
            sync_counts=self.sync_counts,
            publisher=self.publisher,
        )
        self._server = HttpServer(app, self.host, self.port, name="exporter")
        await self._server.start()  # raises ListenError with nothing left open
        self.port = self._server.port  # the real port when 0 was asked for
        if self.bridge_client is not None:
            self.bridge_client.shard = ShardIdentity(plan.shard, plan.total_shards)
            self.bridge_client.start()
        self.rollouts.start()
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
        await self.rollouts.stop()
        if self._server is not None:
            await self._server.stop()  # stops the publisher: queued transitions reach the sink
        if self.bridge_client is not None:
            await self.bridge_client.stop()

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


def read_bridge_token(settings: ExporterSettings) -> str:
    """The bearer token for ``bridge_url``, from its file or variable; SettingsError names the
    key (never the token)."""
    if settings.bridge_token_file:
        try:
            token = Path(settings.bridge_token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                "exporter.bridge_token_file",
                f"cannot read {settings.bridge_token_file}: {exc.strerror}",
            ) from None
        where = "exporter.bridge_token_file"
    else:
        token = os.environ.get(settings.bridge_token_env, "").strip()
        where = f"exporter.bridge_token_env ({settings.bridge_token_env})"
    if not token:
        raise SettingsError(where, "empty token")
    return token


async def run_exporter(
    settings: ExporterSettings, transition_sink: TransitionSink | None = None
) -> None:
    """Runs the exporter until cancelled (SIGINT/SIGTERM in the CLI)."""
    async with Exporter(settings, transition_sink=transition_sink):
        await asyncio.Event().wait()
