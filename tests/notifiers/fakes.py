"""Real local HTTP servers standing in for destinations, plus small helpers for bridge tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from notifiers.app import Bridge
from notifiers.config import config_from_mapping
from notifiers.intake import new_event_id, parse_flux_event
from notifiers.model import Event
from notifiers.pgstore import PostgresSettings, PostgresStore
from notifiers.store import DB_NAME, SqliteStore
from notifiers.storeapi import OutboxStore

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks docs' example secret


@dataclass
class Step:
    """One scripted answer: a status, optional headers, an optional delay (for timeouts).

    ``hold`` keeps the request open until the test calls ``FakeDestination.release()`` (or
    stops the server): a destination that hangs for as long as the test needs, no guessed time.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str = ""
    hold: bool = False


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeDestination:
    """A webhook receiver that honours the idempotency key, as a well-behaved pipeline would.

    ``script`` answers requests in order, then ``default`` forever. ``applied`` holds one entry
    per distinct ``webhook-id`` that was answered 2xx: re-sends of an applied id are answered 200
    and not applied again.
    """

    def __init__(self, script: list[Step] | None = None, default: Step | None = None) -> None:
        self.script = list(script or [])
        self.default = default or Step(200)
        # answers for requests whose first event has this object name (checked before script)
        self.by_name: dict[str, list[Step]] = {}
        self.requests: list[Received] = []
        self.applied: dict[str, Received] = {}
        self.duplicates = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()  # cuts a delayed answer short, so stop() leaves nothing
        self._released = asyncio.Event()  # answers held requests (Step.hold)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        rec = Received(dict(request.headers), body, time.monotonic())
        self.requests.append(rec)
        name = ""
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            name = json.loads(body)["data"]["events"][0]["name"]
        if self.by_name.get(name):
            step = self.by_name[name].pop(0)
        else:
            step = self.script.pop(0) if self.script else self.default
        if step.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), step.delay)
        if step.hold:
            await self._released.wait()
        if 200 <= step.status < 300:
            key = rec.headers.get("webhook-id") or rec.headers.get("Idempotency-Key", "")
            if key in self.applied:
                self.duplicates += 1
            else:
                self.applied[key] = rec
        return web.Response(status=step.status, headers=dict(step.headers), text=step.body)

    async def start(self) -> FakeDestination:
        self._stopping.clear()
        self._released.clear()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    def release(self) -> None:
        """Answer every held request, and those still to come, at once."""
        self._released.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def applied_events(self) -> list[dict[str, Any]]:
        return [e for rec in self.applied.values() for e in rec.json["data"]["events"]]


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], within: float = 10.0, interval: float = 0.02
) -> None:
    """Poll until ``predicate`` holds; fail with a clear message at the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def bridge_config(
    state_dir: Path,
    destinations: Mapping[str, Any],
    route: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "state_dir": str(state_dir),
        "route": dict(route or {"destinations": list(destinations), "group_wait": "0s"}),
        "destinations": dict(destinations),
    }
    doc.update(extra)
    if OUTBOX_POSTGRES_DSN is not None:
        dsn_file = state_dir.parent / f"{state_dir.name}-postgres.dsn"
        dsn_file.parent.mkdir(parents=True, exist_ok=True)
        dsn_file.write_text(OUTBOX_POSTGRES_DSN)
        outbox = dict(doc.get("outbox") or {})
        outbox["postgres"] = {"dsn_file": str(dsn_file)}
        doc["outbox"] = outbox
    return {"bridge": doc}


# Set by the ``outbox_backend`` fixture: bridges built by ``bridge_config`` use this database.
OUTBOX_POSTGRES_DSN: str | None = None


def fast_webhook(url: str, **extra: Any) -> dict[str, Any]:
    """A webhook destination with retry timings shrunk so tests finish in seconds."""
    dest: dict[str, Any] = {
        "type": "webhook",
        "url": url,
        "timeout": "1s",
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 30},
        "circuit_breaker": {"failures": 1000, "cooldown": "100ms"},
    }
    dest.update(extra)
    return dest


def make_bridge(doc: Mapping[str, Any], **kwargs: Any) -> Bridge:
    return Bridge(config_from_mapping(doc), **kwargs)


def flux_event(
    name: str = "podinfo",
    *,
    namespace: str = "apps",
    kind: str = "Kustomization",
    severity: str = "error",
    reason: str = "HealthCheckFailed",
    message: str = "health check failed",
    revision: str = "main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    meta = {"revision": revision}
    meta.update(metadata or {})
    return {
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{name}",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "resourceVersion": "1",
        },
        "severity": severity,
        "timestamp": "2026-08-16T10:26:43Z",
        "message": message,
        "reason": reason,
        "metadata": meta,
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
    }


def parsed_flux_event(
    name: str = "podinfo", *, cluster: str = "c1", now: float | None = None, **fields: Any
) -> Event:
    """A Flux event as the intake parses it from ``POST /flux/<cluster>``, with a fresh id."""
    return parse_flux_event(
        flux_event(name, **fields),
        cluster_from_request=cluster,
        default_cluster="d",
        now=time.time() if now is None else now,
        event_id=new_event_id(),
    )


def query_outbox(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` (no parameters) on the outbox the bridge of ``state_dir`` uses, SQLite or
    PostgreSQL, through a separate connection; committed."""
    if OUTBOX_POSTGRES_DSN is not None:
        with psycopg.connect(OUTBOX_POSTGRES_DSN) as pg:
            cur = pg.execute(sql)
            return cur.fetchall() if cur.description else []
    conn = sqlite3.connect(state_dir / DB_NAME)
    try:
        with conn:
            return conn.execute(sql).fetchall()
    finally:
        conn.close()


def open_store(state_dir: Path) -> OutboxStore:
    """The store of a stopped bridge, opened for maintenance (close it after)."""
    store: OutboxStore
    if OUTBOX_POSTGRES_DSN is not None:
        dsn_file = state_dir.parent / f"{state_dir.name}-postgres.dsn"
        store = PostgresStore(PostgresSettings(dsn_file=dsn_file))
    else:
        store = SqliteStore(state_dir)
    store.open()
    return store


def stored_events(state_dir: Path) -> list[dict[str, Any]]:
    """Events as committed in the outbox, read through a separate connection."""
    rows = query_outbox(state_dir, "SELECT body, raw, decision FROM events ORDER BY seq")
    return [{**json.loads(b), "raw": json.loads(r), "decision": d} for b, r, d in rows]


def metric(bridge: Bridge, name: str, labels: Mapping[str, str] | None = None) -> float:
    value = bridge.metrics.registry.get_sample_value(name, dict(labels or {}))
    return value or 0.0


async def drained(bridge: Bridge, destination: str) -> None:
    """Wait until nothing is queued for ``destination``: no event waits in a group and no
    notification waits for an attempt, so nothing more can reach it. This is how a test
    asserts that something was *not* sent, without sleeping for a guessed time."""

    def queue_empty() -> bool:
        depth = bridge.metrics.registry.get_sample_value(
            "fluxwatch_bridge_queue_depth", {"destination": destination}
        )
        return depth == 0

    await eventually(queue_empty)


async def holds_throughout(predicate: Callable[[], bool], during: float) -> None:
    """Check an invariant while the event loop keeps running (the bridge keeps working), failing
    at the first moment it breaks; for "nothing is sent while ..." assertions."""
    deadline = time.monotonic() + during
    while time.monotonic() < deadline:
        assert predicate(), "invariant broken"
        await asyncio.sleep(0.02)
    assert predicate(), "invariant broken"


class ManualClock:
    """An injected clock that moves only when a test says so (``Bridge(clock=...)``)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, at: float) -> None:
        self.now = max(self.now, at)


def attempts_finished(bridge: Bridge) -> int:
    assert bridge.dispatcher is not None
    return bridge.dispatcher.attempts_finished


async def settled(bridge: Bridge) -> None:
    """Wait until the dispatcher has acted on everything it can do at the current clock time:
    no attempt in flight, nothing loading from disk, and it has looked at the outcome."""
    dispatcher = bridge.dispatcher
    assert dispatcher is not None
    await eventually(dispatcher.settled, interval=0.001)


async def tick(bridge: Bridge, clock: ManualClock, max_jumps: int = 10_000) -> int:
    """Jump the clock from one dispatcher wake-up to the next until at least one attempt has
    finished and everything settled; returns how many attempts finished."""
    dispatcher = bridge.dispatcher
    assert dispatcher is not None
    before = dispatcher.attempts_finished
    for _ in range(max_jumps):
        await settled(bridge)
        if dispatcher.attempts_finished > before:
            return dispatcher.attempts_finished - before
        passes = dispatcher.passes
        clock.set(dispatcher.next_wake_at)
        dispatcher.wake()
        await eventually(lambda seen=passes: dispatcher.passes > seen, interval=0.001)
    raise AssertionError(f"no attempt within {max_jumps} wake-ups")
