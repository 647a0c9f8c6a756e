"""Delivery against fake destinations: 500 then 200, 429 + Retry-After, timeouts, dead
letters and replay."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from notifiers.admin import list_notifications, replay_notifications
from notifiers.writer import OutboxError
from tests.notifiers.fakes import (
    WHSEC,
    FakeDestination,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    metric,
    parsed_flux_event,
)


async def start(tmp_path: Path, dest: FakeDestination, **webhook: object):  # type: ignore[no-untyped-def]
    monkey_secret = tmp_path / "secret"
    monkey_secret.write_text(WHSEC)
    doc = bridge_config(
        tmp_path / "state",
        {"ci": fast_webhook(dest.url, secret_file=str(monkey_secret), **webhook)},
    )
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    return bridge


async def accept(bridge, name: str = "podinfo") -> str:  # type: ignore[no-untyped-def]

    event = parsed_flux_event(name)
    await bridge.submit([event])
    return event.id


async def test_500_then_200_is_delivered_once_with_one_key(tmp_path: Path) -> None:
    dest = await FakeDestination([Step(500), Step(503)]).start()
    bridge = await start(tmp_path, dest)
    try:
        await accept(bridge)
        delivered = {"destination": "ci", "outcome": "delivered"}
        # the destination answers before the bridge records the outcome: wait for the record
        await eventually(
            lambda: metric(bridge, "fluxwatch_bridge_deliveries_total", delivered) == 1
        )
        assert len(dest.applied) == 1
        assert len(dest.requests) == 3
        assert len({r.headers["webhook-id"] for r in dest.requests}) == 1
        retried = {"destination": "ci", "outcome": "retry"}
        assert metric(bridge, "fluxwatch_bridge_deliveries_total", retried) == 2
    finally:
        await bridge.stop()
        await dest.stop()


async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    dest = await FakeDestination([Step(429, {"Retry-After": "1"})]).start()
    bridge = await start(tmp_path, dest)
    try:
        await accept(bridge)
        await eventually(lambda: len(dest.applied) == 1)
        first, second = dest.requests[0].at, dest.requests[1].at
        assert second - first >= 0.95  # backoff alone would have been ~50 ms
    finally:
        await bridge.stop()
        await dest.stop()


async def test_timeout_is_retried(tmp_path: Path) -> None:
    dest = await FakeDestination([Step(200, delay=1.0)]).start()
    bridge = await start(tmp_path, dest, timeout="200ms")
    try:
        await accept(bridge)
        await eventually(
            lambda: (
                len(dest.requests) >= 2
                and any(r is not dest.requests[0] for r in dest.applied.values())
            )
        )
        assert (
            metric(
                bridge,
                "fluxwatch_bridge_deliveries_total",
                {"destination": "ci", "outcome": "retry"},
            )
            >= 1
        )
    finally:
        await bridge.stop()
        await dest.stop()


@pytest.mark.parametrize(
    ("script", "webhook", "why"),
    [
        ([Step(410, body="endpoint disabled")], {}, "permanent: HTTP 410"),
        (
            [Step(500)] * 3,
            {"retry": {"initial_backoff": "10ms", "max_backoff": "20ms", "max_attempts": 3}},
            "gave up after 3 attempts",
        ),
    ],
    ids=["410-permanent", "attempts-exhausted"],
)
async def test_dead_letter_then_replay(
    tmp_path: Path, script: list[Step], webhook: dict[str, object], why: str
) -> None:
    dest = await FakeDestination(script, default=Step(200)).start()
    bridge = await start(tmp_path, dest, **webhook)
    conn = sqlite3.connect(bridge.state_dir / "outbox.sqlite3", isolation_level=None)
    try:
        await accept(bridge)
        await eventually(lambda: bool(list_notifications(conn, status="dead")))
        [dead] = list_notifications(conn, status="dead")
        assert why in dead["last_error"]
        assert dest.applied == {}
        await eventually(
            lambda: metric(bridge, "fluxwatch_bridge_dead_letters", {"destination": "ci"}) == 1
        )
        key = dest.requests[0].headers["webhook-id"]
        assert (
            replay_notifications(
                conn, [dead["id"]], all_dead=False, destination=None, now=time.time()
            )
            == 1
        )
        await eventually(lambda: bool(list_notifications(conn, status="delivered")))
        assert list(dest.applied) == [key]  # replay keeps the idempotency key
        assert list_notifications(conn, status="delivered")[0]["id"] == dead["id"]
    finally:
        conn.close()
        await bridge.stop()
        await dest.stop()


async def test_replay_is_picked_up_after_a_failed_transaction(tmp_path: Path) -> None:
    dest = await FakeDestination([Step(410)], default=Step(200)).start()
    bridge = await start(tmp_path, dest)
    conn = sqlite3.connect(bridge.state_dir / "outbox.sqlite3", isolation_level=None)
    try:
        await accept(bridge)
        await eventually(lambda: bool(list_notifications(conn, status="dead")))
        [dead] = list_notifications(conn, status="dead")
        # Hold the replay poll so the failed transaction surely comes before it.
        assert bridge._maintenance is not None
        bridge._maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bridge._maintenance
        replay_notifications(conn, [dead["id"]], all_dead=False, destination=None, now=time.time())

        def boom(_conn: sqlite3.Connection) -> None:
            raise RuntimeError("injected failure")

        with pytest.raises(OutboxError):
            await bridge.outbox.call(boom)  # the writer reloads its state from disk
        bridge._maintenance = asyncio.create_task(bridge._maintain())
        await eventually(lambda: bool(list_notifications(conn, status="delivered")))
        assert list_notifications(conn, status="delivered")[0]["id"] == dead["id"]
    finally:
        conn.close()
        await bridge.stop()
        await dest.stop()
