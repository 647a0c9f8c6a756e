"""A two-hour destination outage ends with every notification delivered, none dead-lettered,
while only a bounded window of them is held in memory. Time is an injected clock: the two hours
pass in a few seconds, one breaker probe per cooldown."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifiers.store import connect
from tests.notifiers.fakes import (
    FakeDestination,
    ManualClock,
    Step,
    bridge_config,
    eventually,
    make_bridge,
    metric,
    parsed_flux_event,
    tick,
)

WINDOW = 40
BACKLOG = 300
OUTAGE = 2 * 3600.0


async def test_two_hour_outage_ends_with_everything_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("notifiers.delivery.MEMORY_WINDOW", WINDOW)
    clock = ManualClock()
    dest = await FakeDestination(default=Step(503)).start()
    webhook = {
        "type": "webhook",
        "url": dest.url,
        "timeout": "5s",
        # the defaults that matter: 25 attempts, 24 h max age, breaker 5 failures / 30 s
        "retry": {"initial_backoff": "10s", "max_backoff": "5m"},
        "circuit_breaker": {"failures": 5, "cooldown": "30s"},
    }
    route = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}
    state = tmp_path / "state"
    bridge = make_bridge(bridge_config(state, {"ci": webhook}, route), clock=clock)
    await bridge.start(serve=False)
    assert bridge.dispatcher is not None
    ci = bridge.dispatcher.dests["ci"]
    conn = connect(state / "outbox.sqlite3")
    try:
        events = [parsed_flux_event(f"app-{i}", now=clock()) for i in range(BACKLOG)]
        await bridge.submit(events)
        await eventually(
            lambda: conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == BACKLOG
        )
        start = clock()
        held_most = 0
        probes = 0
        while clock() < start + OUTAGE:
            await tick(bridge, clock)
            held_most = max(held_most, len(ci.queue))
            probes += 1
        assert probes > OUTAGE / 30 * 0.9  # the breaker probed about once per cooldown
        assert ci.on_disk  # the rest of the backlog waits on disk
        # the queue metrics still count all of it, not just the window (read from the outbox)
        await eventually(
            lambda: metric(bridge, "fluxwatch_bridge_queue_depth", {"destination": "ci"}) == BACKLOG
        )
        oldest = metric(
            bridge, "fluxwatch_bridge_oldest_pending_age_seconds", {"destination": "ci"}
        )
        assert oldest >= OUTAGE
        assert metric(bridge, "fluxwatch_bridge_dead_letters", {"destination": "ci"}) == 0
        assert (
            conn.execute("SELECT count(*) FROM notifications WHERE status = 'dead'").fetchone()[0]
            == 0
        )

        dest.default = Step(200)  # the destination is back
        while len(dest.applied) < BACKLOG:
            await tick(bridge, clock)
            held_most = max(held_most, len(ci.queue))
        assert held_most <= WINDOW
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM notifications GROUP BY status").fetchall()
        )
        assert statuses == {"delivered": BACKLOG}
        most_attempts = conn.execute("SELECT max(attempts) FROM notifications").fetchone()[0]
        assert most_attempts <= 5  # failures before the breaker opened, then the delivery
        assert dest.duplicates == 0
    finally:
        conn.close()
        await bridge.stop()
        await dest.stop()
