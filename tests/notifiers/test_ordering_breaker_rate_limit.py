"""Per-object ordering survives retries; a dead destination does not slow others; the circuit
breaker and rate limits hold.

Time is an injected clock, and a hanging destination hangs until the test releases it: nothing
here depends on how fast the machine is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifiers.app import Bridge
from notifiers.model import Event
from tests.notifiers.fakes import (
    FakeDestination,
    ManualClock,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    metric,
    parsed_flux_event,
    settled,
    tick,
)

pytestmark = pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL

NO_GROUPING = {"group_by": ["..."], "group_wait": "0s"}


def event(clock: ManualClock, name: str, **kw: Any) -> Event:
    return parsed_flux_event(name, **kw, now=clock())


def clocked_bridge(tmp_path: Path, clock: ManualClock, dests: dict[str, Any]) -> Bridge:
    route = {"destinations": sorted(dests), **NO_GROUPING}
    return make_bridge(bridge_config(tmp_path, dests, route), clock=clock)


async def test_order_per_object_is_kept_across_retries(tmp_path: Path) -> None:
    clock = ManualClock()
    dest = await FakeDestination().start()
    dest.by_name["podinfo"] = [Step(500), Step(500)]
    bridge = clocked_bridge(tmp_path, clock, {"ci": fast_webhook(dest.url)})
    await bridge.start(serve=False)
    try:
        await bridge.submit([event(clock, "podinfo")])
        await bridge.submit(
            [event(clock, "podinfo", severity="info", reason="ReconciliationSucceeded")]
        )
        await bridge.submit([event(clock, "other")])
        while len(dest.applied) < 3:
            await tick(bridge, clock)
        order = [e["name"] + ":" + e["status"] for e in dest.applied_events()]
        assert order.index("podinfo:failing") < order.index("podinfo:ready")
        assert order.index("other:failing") < order.index("podinfo:ready")  # not held back
        assert len(dest.requests) == 5
    finally:
        await bridge.stop()
        await dest.stop()


async def test_dead_destination_does_not_slow_the_others(tmp_path: Path) -> None:
    good = await FakeDestination().start()
    bad = await FakeDestination(default=Step(200, hold=True)).start()  # hangs until released
    dests = {
        "good": fast_webhook(good.url),
        "bad": fast_webhook(bad.url, timeout="1h", max_in_flight=2),
    }
    bridge = make_bridge(
        bridge_config(tmp_path, dests, {"destinations": ["bad", "good"], **NO_GROUPING})
    )
    await bridge.start(serve=False)
    try:
        for i in range(20):
            await bridge.submit([event(ManualClock(), f"app-{i}")])
        await eventually(lambda: len(good.applied) == 20)
        # All 20 reached the good destination while the bad one holds its first two attempts
        # (its max_in_flight) open: not one of them has finished, so none held the others up.
        await eventually(lambda: len(bad.requests) == 2)
        bad_attempts_finished = sum(
            metric(
                bridge, "fluxwatch_bridge_deliveries_total", {"destination": "bad", "outcome": o}
            )
            for o in ("delivered", "retry", "dead")
        )
        assert bad_attempts_finished == 0
        assert len(bad.applied) == 0
        bad.release()  # and the bad one catches up once it answers
        await eventually(lambda: len(bad.applied) == 20)
    finally:
        await bridge.stop()
        await good.stop()
        await bad.stop()


async def test_circuit_breaker_opens_then_probes_once_per_cooldown(tmp_path: Path) -> None:
    clock = ManualClock()
    dest = await FakeDestination(default=Step(503)).start()
    webhook = fast_webhook(
        dest.url, max_in_flight=1, circuit_breaker={"failures": 3, "cooldown": "10s"}
    )
    bridge = clocked_bridge(tmp_path, clock, {"ci": webhook})
    await bridge.start(serve=False)
    assert bridge.dispatcher is not None
    ci = bridge.dispatcher.dests["ci"]
    try:
        for i in range(10):
            await bridge.submit([event(clock, f"app-{i}")])
        while metric(bridge, "fluxwatch_bridge_circuit_open", {"destination": "ci"}) != 1.0:
            await tick(bridge, clock)
        assert len(dest.requests) == 3  # the three failures that opened it
        opened_at = ci.breaker.opened_at
        assert opened_at is not None

        # Every notification is due, but until the cooldown ends nothing is sent.
        for at in (opened_at + 1, opened_at + 5, opened_at + 9.5):
            passes = bridge.dispatcher.passes
            clock.set(at)
            bridge.dispatcher.wake()
            await eventually(lambda seen=passes: bridge.dispatcher.passes > seen)  # type: ignore[union-attr]
            await settled(bridge)
            assert len(dest.requests) == 3, at - opened_at

        # Then exactly one probe per cooldown.
        for probe in range(1, 4):
            assert await tick(bridge, clock) == 1
            assert len(dest.requests) == 3 + probe
            assert ci.breaker.opened_at == clock()  # the failed probe opened it again
    finally:
        await bridge.stop()
        await dest.stop()


async def test_rate_limit_spaces_deliveries(tmp_path: Path) -> None:
    clock = ManualClock()
    dest = await FakeDestination().start()
    webhook = fast_webhook(dest.url, rate_limit={"per_second": 20, "burst": 1})
    bridge = clocked_bridge(tmp_path, clock, {"ci": webhook})
    await bridge.start(serve=False)
    assert bridge.dispatcher is not None
    dispatcher = bridge.dispatcher
    try:
        for i in range(10):
            await bridge.submit([event(clock, f"app-{i}")])
        await eventually(lambda: len(dest.applied) == 1)  # the burst of one
        for sent in range(2, 11):
            # 49 ms after the last one: no token yet
            passes = dispatcher.passes
            clock.advance(0.049)
            dispatcher.wake()
            await eventually(lambda seen=passes: dispatcher.passes > seen)
            await settled(bridge)
            assert len(dest.requests) == sent - 1
            # just past 50 ms the next token: exactly one more
            clock.advance(0.002)
            dispatcher.wake()
            await eventually(lambda n=sent: len(dest.applied) == n)
            await settled(bridge)
            assert len(dest.requests) == sent
    finally:
        await bridge.stop()
        await dest.stop()
