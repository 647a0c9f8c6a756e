"""``Bridge``: wires intake, routing, the outbox and the dispatcher into one service.

The programmatic API for ``fluxwatch bridge``, ``fluxwatch run`` and ``fluxwatch demo``::

    bridge = Bridge(config, state_dir=Path("state"))
    async with bridge:                       # start(); ...; stop()
        await bridge.accept_transition(t)    # returns once durably stored
    bridge.app                               # the aiohttp application (intake, /metrics, probes)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notifiers.config import BridgeConfig
from notifiers.delivery import Dispatcher
from notifiers.http import HttpClient
from notifiers.intake import IntakeError, IntakeHandlers, new_event_id, parse_transition
from notifiers.metrics import BridgeMetrics
from notifiers.model import Event, Notification
from notifiers.outbox import IngestItem, Outbox
from notifiers.pgschema import PostgresError
from notifiers.pgstore import PostgresStore
from notifiers.providers import PROVIDERS, Provider, ProviderContext
from notifiers.replicas import Replica
from notifiers.rolloutservice import RolloutService
from notifiers.routing import Decision, opts_into_fleet_rollouts, route_event
from notifiers.sharedoutbox import SharedOutbox
from notifiers.statuspublisher import targets_from
from notifiers.storeapi import OutboxStore
from notifiers.writer import OutboxError
from plumbing.http_server import HttpServer

log = logging.getLogger("fluxwatch.bridge")

POLL_INTERVAL = 1.0  # how often operator replays and dead-letter counts are picked up
GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap under intake load (process-wide).

    With 128 requests in flight, each holding futures, tasks and aiohttp objects while it waits
    for its group commit, a young collection every 700 allocations finds most of them alive and
    promotes them; the old generation then grows fast enough to trigger a full collection (a
    walk of every object in the process) every second or so. Under the bench's load the
    collector took 25-45 µs of CPU per accepted event, a fifth of the total. A larger young
    generation lets request objects die before they are examined; freezing what exists at start
    (modules, configuration, loaded state) keeps it out of every later full collection. The
    threshold is never lowered, and a disabled collector (threshold 0) is left alone; calling
    this again only freezes what was added since.
    """
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.freeze()


class StateDirError(Exception):
    """The state directory cannot be created, written or opened; the message says which."""


def _why(exc: BaseException) -> str:
    if isinstance(exc, FileExistsError):  # mkdir of a path that is a regular file
        return "it exists and is not a directory"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


class Bridge:
    def __init__(
        self,
        config: BridgeConfig,
        *,
        state_dir: Path | None = None,
        console: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        listen: tuple[str, int] | None = None,
    ) -> None:
        self.config = config
        self.state_dir = state_dir if state_dir is not None else config.state_dir
        self.console = console if console is not None else sys.stdout
        self.clock = clock
        self.listen = listen if listen is not None else (config.listen_host, config.listen_port)
        self.metrics = BridgeMetrics()
        self.outbox: Outbox
        if config.outbox.postgres is None:
            self.outbox = Outbox(
                self.state_dir,
                synchronous=config.outbox.synchronous,
                dedup_window=config.dedup_window,
                max_events_per_notification=config.outbox.max_events_per_notification,
                max_batch=config.outbox.max_batch,
                clock=clock,
                on_commit_batch=self.metrics.commit_batch.observe,
                on_busy=self.metrics.busy_seconds.inc,
            )
        else:  # one of possibly several replicas on one database
            self.outbox = SharedOutbox(
                PostgresStore(config.outbox.postgres),
                dedup_window=config.dedup_window,
                max_events_per_notification=config.outbox.max_events_per_notification,
                max_batch=config.outbox.max_batch,
                clock=clock,
                on_commit_batch=self.metrics.commit_batch.observe,
                on_busy=self.metrics.busy_seconds.inc,
            )
        self.replica: Replica | None = None
        self.providers: dict[str, Provider] = {
            name: PROVIDERS[dest.type].create(name, dest.options)
            for name, dest in config.destinations.items()
        }
        self.intake = IntakeHandlers(
            flux=config.flux,
            alertmanager=config.alertmanager,
            max_body_bytes=config.max_body_bytes,
            metrics=self.metrics,
            submit=self.submit,
            clock=clock,
        )
        # Remote exporters' intake and the fleet rollout state (notifiers/rolloutservice.py).
        self.rollouts = RolloutService(
            state_dir=self.state_dir,
            exporters=config.exporters,
            rollouts=config.rollouts,
            metrics=self.metrics,
            submit=self.submit,
            max_body_bytes=config.max_body_bytes,
            status_targets=targets_from(config.destinations, PROVIDERS),
            fleet_chat=opts_into_fleet_rollouts(config.route),
            clock=clock,
            postgres=config.outbox.postgres,  # the rollout state goes where the outbox is
        )
        self._app = self._build_app()
        self._server: HttpServer | None = None
        self._http: HttpClient | None = None
        self.dispatcher: Dispatcher | None = None
        self._maintenance: asyncio.Task[None] | None = None
        self._started = False
        self.port: int | None = None
        self.last_prune_at: float | None = None  # clock time of the last outbox prune
        self.on_delivered: Callable[[Notification], None] | None = None

    # ---- the aiohttp application ----

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes + 1)
        app.router.add_post("/flux", self.intake.flux_event)
        app.router.add_post("/flux/{cluster}", self.intake.flux_event)
        app.router.add_post("/alertmanager", self.intake.alertmanager_webhook)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self.rollouts.add_routes(app)
        return app

    @property
    def app(self) -> web.Application:
        return self._app

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._started and self.outbox.alive:
            return web.Response(text="ready\n")
        return web.Response(text="outbox not running\n", status=503)

    # ---- lifecycle ----

    @property
    def url(self) -> str:
        """Base URL of the intake (valid after ``start``; wildcard hosts become loopback)."""
        if self._server is None:
            raise RuntimeError("the bridge is not serving HTTP")
        return self._server.url

    async def start(self, *, serve: bool = True) -> None:
        """Open the outbox, start delivering, and (unless ``serve`` is false) listen for HTTP.

        Raises ``ListenError`` (port in use) or ``StateDirError`` (state directory unusable)
        with one line saying why; whatever had started by then is stopped again.
        """
        try:
            await self._start(serve=serve)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, *, serve: bool) -> None:
        self._http = HttpClient()
        ctx = ProviderContext(
            http=self._http, console=self.console, clock=self.clock, threads=self.outbox
        )
        dispatcher = Dispatcher(
            self.outbox,
            self.config.destinations,
            self.providers,
            ctx,
            self.metrics,
            clock=self.clock,
        )
        dispatcher.on_delivered = self._delivered
        self.metrics.store_up.set_function(lambda: 0.0 if self.outbox.failed else 1.0)

        def reconnected() -> None:
            self.metrics.store_reconnects.inc()
            dispatcher.rescan()

        self.outbox.on_reconnect = reconnected
        self.dispatcher = dispatcher
        self.metrics.queue.view = dispatcher
        try:
            pending = self.outbox.start(dispatcher.add)
            self.rollouts.start()
        except PostgresError as exc:
            raise StateDirError(f"bridge: {exc}") from None
        except (OSError, sqlite3.Error) as exc:
            raise StateDirError(
                f"bridge: cannot use state directory {self.state_dir}: {_why(exc)}"
            ) from None
        tune_gc()  # after the state is loaded: it is long-lived
        if isinstance(self.outbox, SharedOutbox):
            assert self.config.outbox.postgres is not None
            self.replica = Replica(
                self.outbox,
                dispatcher,
                self.metrics,
                self.config.outbox.postgres,
                destinations=list(self.config.destinations),
            )
            await self.replica.start()  # the destinations this replica delivers
        dispatcher.start()  # loads the first window of the pending notifications
        self._maintenance = asyncio.create_task(
            self._maintain(), name="fluxwatch-outbox-maintenance"
        )
        if serve:
            self._server = HttpServer(
                self._app, self.listen[0], self.listen[1], name="bridge", backlog=1024
            )
            await self._server.start()
            self.port = self._server.port  # the real port when 0 was asked for
        self._started = True
        log.info("bridge started: %d undelivered notifications waiting", pending)

    async def stop(self) -> None:
        self._started = False
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
            self._maintenance = None
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.replica is not None:  # after the dispatcher: nothing of ours is in flight
            await self.replica.stop()
            self.replica = None
        await self.rollouts.stop()
        await self.outbox.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _delivered(self, notification: Notification) -> None:
        if self.on_delivered is not None:
            self.on_delivered(notification)

    async def _maintain(self) -> None:
        cfg = self.config.outbox
        while True:
            try:
                now = self.clock()
                do_prune = now - (self.last_prune_at or 0.0) >= cfg.prune_interval

                def work(store: OutboxStore, now: float = now, do_prune: bool = do_prune) -> Any:
                    removed = (
                        store.prune(
                            now=now,
                            retention=cfg.retention,
                            dead_retention=cfg.dead_retention,
                            dedup_window=self.config.dedup_window,
                        )
                        if do_prune
                        else None
                    )
                    if removed is not None:
                        horizon = now - max(cfg.retention, self.config.dedup_window)
                        removed["dedup_memory"] = self.outbox.forget_settled(horizon)
                    return (
                        store.take_requeued(),
                        store.dead_counts(),
                        store.pending_counts(),
                        removed,
                    )

                requeued, dead, waiting, removed = await self.outbox.call(work)
                if do_prune:
                    self.last_prune_at = now
                    if removed and any(removed.values()):
                        log.info("outbox pruned: %s", removed)
                assert self.dispatcher is not None
                self.dispatcher.set_dead_counts(dead)
                self.dispatcher.set_disk_pending(waiting)
                if requeued:
                    log.info("replaying %d notifications", sum(map(len, requeued.values())))
                    self.dispatcher.requeued(requeued)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox maintenance failed; retrying")
            await asyncio.sleep(POLL_INTERVAL)

    # ---- intake ----

    def route(self, event: Event, *, explain: bool = True) -> Decision:
        return route_event(
            self.config.route,
            event,
            owners=self.config.owners,
            known_destinations=self.config.destinations,
            time_intervals=self.config.time_intervals,
            now=self.clock(),
            explain=explain,
        )

    async def submit(self, events: Sequence[Event]) -> None:
        """Route and store; returns after the transaction holding them has committed."""
        items = []
        for event in events:
            decision = self.route(event, explain=False)  # the trail is only for `routes test`
            items.append(IngestItem(event, decision.targets, muted=bool(decision.muted)))
        try:
            results = await self.outbox.ingest(items)
        except OutboxError as exc:
            raise IntakeError(
                "storage", "the outbox could not store the event; retry", 503
            ) from exc
        for result in results:
            if result.deliveries == 0:
                self.metrics.child(self.metrics.dropped, result.decision).inc()

    async def accept_transition(self, transition: Mapping[str, Any]) -> str:
        """In-process intake of the exporter's ``Transition.as_dict()``; returns the event id.

        Raises ``IntakeError`` for a malformed mapping (counted as a rejection, never a crash).
        """
        try:
            event = parse_transition(transition, now=self.clock(), event_id=new_event_id())
        except IntakeError as exc:
            self.metrics.child(self.metrics.rejected, "transition", exc.reason).inc()
            log.warning("rejected a transition: %s", exc.message)
            raise
        await self.submit([event])
        self.metrics.child(self.metrics.received, "transition").inc()
        return event.id
