"""The bridge's side of remote exporters and fleet rollouts.

Endpoints (on the bridge's listener, bearer token from ``bridge.exporters``):

- ``POST /exporter/v1/transitions``: ``{"shard", "total_shards", "transitions": [...]}``, each
  one ``Transition.as_dict()``. Stored in the outbox like in-process transitions; ``202
  {"accepted": [ids], "rejected": [{"index", "error"}]}`` after commit. A malformed transition is
  rejected alone (and counted) so the exporter does not resend the batch forever.
- ``POST /exporter/v1/rollouts``: ``{"shard", "total_shards", "synced", "clusters": [{"cluster",
  "objects": [...]}]}``: the newest applier objects of each reported cluster; ``202`` after the
  rollout store committed.
- ``GET /rollouts``: the rollout view as JSON (``?format=text`` for the terminal table).

A missing or wrong token gets ``401`` and nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from notifiers.intake import (
    IntakeError,
    decode_json,
    new_event_id,
    parse_transition,
    read_body,
)
from notifiers.metrics import BridgeMetrics
from notifiers.model import Event
from notifiers.pgstore import PostgresSettings
from notifiers.rolloutconfig import ExportersConfig, RolloutsConfig
from notifiers.rolloutpg import PostgresRolloutStore
from notifiers.rollouts import ClusterObject, parse_object
from notifiers.rolloutstore import ReportResult, RolloutStore, SqliteRolloutStore, prune_rollouts
from notifiers.rolloutview import load_view, render_html, render_text
from notifiers.statusplan import StatusTarget
from notifiers.statuspublisher import StatusPublisher, dead_statuses

log = logging.getLogger("fluxwatch.bridge.rollouts")

Submit = Callable[[Sequence[Event]], Awaitable[None]]
Listener = Callable[[ReportResult], None]


def check_bearer(header: str | None, tokens: Sequence[str]) -> bool:
    """Constant-time against every configured token (rotation: two tokens at once)."""
    if not header or not tokens:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    given = value.strip().encode()
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given, token.encode())
    return ok


def _int(doc: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise IntakeError("invalid_event", f"{key} must be an integer >= {minimum}")
    return value


def parse_report(doc: Any, now: float) -> tuple[int, int, bool, dict[str, list[ClusterObject]]]:
    """An exporter's rollout report; IntakeError names the bad field's path."""
    if not isinstance(doc, Mapping):
        raise IntakeError("invalid_event", "a rollout report must be an object")
    total = _int(doc, "total_shards", 1, 1)
    shard = _int(doc, "shard", 0, 0)
    if shard >= total:
        raise IntakeError("invalid_event", "shard must be below total_shards")
    synced = doc.get("synced", False)
    if not isinstance(synced, bool):
        raise IntakeError("invalid_event", "synced must be true or false")
    raw_clusters = doc.get("clusters")
    if not isinstance(raw_clusters, list):
        raise IntakeError("invalid_event", "clusters must be a list")
    clusters: dict[str, list[ClusterObject]] = {}
    for i, entry in enumerate(raw_clusters):
        where = f"clusters[{i}]"
        if not isinstance(entry, Mapping):
            raise IntakeError("invalid_event", f"{where} must be an object")
        name = entry.get("cluster")
        if not isinstance(name, str) or not name:
            raise IntakeError("invalid_event", f"{where}.cluster must be a non-empty string")
        objects = entry.get("objects")
        if not isinstance(objects, list):
            raise IntakeError("invalid_event", f"{where}.objects must be a list")
        try:
            clusters[name] = [
                parse_object(o, name, now, f"{where}.objects[{j}]") for j, o in enumerate(objects)
            ]
        except ValueError as exc:
            raise IntakeError("invalid_event", str(exc)) from None
    return shard, total, synced, clusters


class RolloutService:
    def __init__(
        self,
        *,
        state_dir: Path,
        exporters: ExportersConfig,
        rollouts: RolloutsConfig,
        metrics: BridgeMetrics,
        submit: Submit,
        max_body_bytes: int,
        status_targets: Sequence[StatusTarget] = (),
        fleet_chat: bool = False,
        clock: Callable[[], float] = time.time,
        postgres: PostgresSettings | None = None,
    ) -> None:
        # With the outbox in PostgreSQL, the rollout state is there too, shared by the replicas.
        self.store: RolloutStore = (
            SqliteRolloutStore(state_dir) if postgres is None else PostgresRolloutStore(postgres)
        )
        self.statuses = StatusPublisher(
            self.store,
            status_targets,
            rollouts.fail,
            metrics,
            clock=clock,
            min_interval=rollouts.status_interval,
            # a route sets fleet_rollouts: the state also goes through routing to chat
            submit=submit if fleet_chat else None,
        )
        self.exporters = exporters
        self.config = rollouts
        self.metrics = metrics
        self.submit = submit
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.listeners: list[Listener] = [self.statuses.on_report]
        self._prune_task: asyncio.Task[None] | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/exporter/v1/transitions", self.transitions)
        app.router.add_post("/exporter/v1/rollouts", self.reports)
        app.router.add_get("/rollouts", self.view)

    def start(self) -> None:
        self.store.open()
        self.statuses.start()
        self._prune_task = asyncio.get_running_loop().create_task(
            self._prune(), name="fluxwatch-rollout-prune"
        )

    async def stop(self) -> None:
        if self._prune_task is not None:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prune_task
            self._prune_task = None
        await self.statuses.stop()
        self.store.close()

    # ---- in-process (fluxwatch run) and HTTP intake ----

    async def accept_report(
        self,
        *,
        shard: int,
        total_shards: int,
        synced: bool,
        clusters: Mapping[str, Sequence[ClusterObject]],
    ) -> ReportResult:
        result = await self.store.report(
            shard=shard,
            total_shards=total_shards,
            synced=synced,
            clusters=clusters,
            now=self.clock(),
        )
        for started in result.started:
            log.info(
                "rollout started: %s %s/%s revision %s",
                started.kind,
                started.namespace,
                started.name,
                started.revision,
            )
        for listener in self.listeners:
            listener(result)
        return result

    async def accept_transitions(
        self, docs: Sequence[Any]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        events: list[Event] = []
        rejected: list[dict[str, Any]] = []
        now = self.clock()
        for index, doc in enumerate(docs):
            try:
                events.append(parse_transition(doc, now=now, event_id=new_event_id()))
            except IntakeError as exc:
                self.metrics.child(self.metrics.rejected, "transition", exc.reason).inc()
                rejected.append({"index": index, "error": exc.message})
        if events:
            await self.submit(events)  # IntakeError (storage, 503) propagates: nothing acked
            self.metrics.child(self.metrics.received, "transition").inc(len(events))
        return [e.id for e in events], rejected

    def _reject(self, source: str, exc: IntakeError, request: web.Request) -> web.Response:
        self.metrics.child(self.metrics.rejected, source, exc.reason).inc()
        log.info("rejected %s payload from %s: %s", source, request.remote, exc.reason)
        return web.json_response({"error": exc.reason, "message": exc.message}, status=exc.status)

    async def _body(self, request: web.Request) -> Any:
        if not check_bearer(request.headers.get("Authorization"), self.exporters.tokens):
            message = (
                "missing or invalid bearer token"
                if self.exporters.tokens
                else "no exporter token configured (bridge.exporters.token_file)"
            )
            raise IntakeError("bad_token", message, 401)
        return decode_json(await read_body(request, self.max_body_bytes * 16))

    async def transitions(self, request: web.Request) -> web.Response:
        try:
            doc = await self._body(request)
            if not isinstance(doc, Mapping) or not isinstance(doc.get("transitions"), list):
                raise IntakeError("invalid_event", 'expected {"transitions": [...]}')
            ids, rejected = await self.accept_transitions(doc["transitions"])
        except IntakeError as exc:
            return self._reject("transition", exc, request)
        return web.json_response({"accepted": ids, "rejected": rejected}, status=202)

    async def reports(self, request: web.Request) -> web.Response:
        try:
            doc = await self._body(request)
            shard, total, synced, clusters = parse_report(doc, self.clock())
        except IntakeError as exc:
            return self._reject("rollout_report", exc, request)
        try:
            result = await self.accept_report(
                shard=shard, total_shards=total, synced=synced, clusters=clusters
            )
        except Exception:
            log.exception("storing a rollout report failed")
            failure = IntakeError("storage", "the rollout store could not store the report", 503)
            return self._reject("rollout_report", failure, request)
        self.metrics.child(self.metrics.received, "rollout_report").inc()
        return web.json_response(
            {"clusters": len(clusters), "started": [r.revision for r in result.started]},
            status=202,
        )

    async def view(self, request: web.Request) -> web.Response:
        now = self.clock()
        rows, dead = await self.store.call(
            lambda conn: (load_view(conn, self.config.fail, now), dead_statuses(conn))
        )
        fmt = request.query.get("format", "")
        if fmt == "text":
            return web.Response(text=render_text(rows, dead))
        if fmt == "html" or (not fmt and "text/html" in request.headers.get("Accept", "")):
            return web.Response(text=render_html(rows, dead), content_type="text/html")
        return web.json_response({"rollouts": rows}, dumps=lambda d: json.dumps(d, sort_keys=True))

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(self.config.prune_interval)
            try:
                removed = await self.store.call(
                    functools.partial(
                        prune_rollouts, now=self.clock(), retention=self.config.retention
                    )
                )
                if removed:
                    log.info("pruned %d finished rollouts", removed)
                if self.store.shared:
                    self.statuses.look_again()
            except Exception:
                log.exception("pruning rollouts failed; retrying")
