"""``fluxwatch outbox replay`` of a notification that died of age gives it a whole new retry
budget (attempts and age), and it keeps its idempotency key. Time is an injected clock."""

from __future__ import annotations

from pathlib import Path

from notifiers.admin import replay_notifications, show_notification
from notifiers.store import connect
from tests.notifiers.fakes import (
    FakeDestination,
    ManualClock,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    parsed_flux_event,
    tick,
)


async def test_replay_after_dying_of_age_retries_for_max_age_again(tmp_path: Path) -> None:
    clock = ManualClock()
    dest = await FakeDestination(default=Step(503)).start()
    webhook = fast_webhook(
        dest.url,
        retry={
            "initial_backoff": "10s",
            "max_backoff": "10s",
            "max_attempts": 100,  # so age, not attempts, is what runs out
            "max_age": "60s",
        },
    )
    route = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}
    state = tmp_path / "state"
    bridge = make_bridge(bridge_config(state, {"ci": webhook}, route), clock=clock)
    await bridge.start(serve=False)
    conn = connect(state / "outbox.sqlite3")
    try:
        event = parsed_flux_event("podinfo", now=clock())
        await bridge.submit([event])

        def status() -> str:
            row = conn.execute("SELECT status FROM notifications").fetchone()
            return "" if row is None else str(row[0])

        await eventually(lambda: status() == "pending")
        while status() == "pending":
            await tick(bridge, clock)
        first = show_notification(conn, 1)
        assert first is not None
        assert first["status"] == "dead"
        assert "gave up after 60s" in first["last_error"]
        attempts_before = len(dest.requests)
        assert attempts_before >= 5  # 60 s of 5-10 s backoff

        # The destination is fixed, but answers 503 three more times first: a replay that only
        # reset the attempts would die of age again on its first failure.
        dest.script = [Step(503), Step(503), Step(503)]
        dest.default = Step(200)
        clock.advance(3600)
        assert replay_notifications(conn, [1], all_dead=False, destination=None, now=clock()) == 1
        await eventually(lambda: bool(bridge.dispatcher and bridge.dispatcher.dests["ci"].queue))
        while status() == "pending":
            await tick(bridge, clock)

        after = show_notification(conn, 1)
        assert after is not None
        assert after["status"] == "delivered"
        assert after["attempts"] == 4
        assert len(dest.requests) == attempts_before + 4
        assert after["idempotency_key"] == first["idempotency_key"]
        assert {r.headers["Idempotency-Key"] for r in dest.requests} == {first["idempotency_key"]}
        assert len(dest.applied) == 1
    finally:
        conn.close()
        await bridge.stop()
        await dest.stop()
