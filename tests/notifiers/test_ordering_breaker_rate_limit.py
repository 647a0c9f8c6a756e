"""Per-object ordering survives retries; a dead destination does not slow others; rate
limits hold."""

from __future__ import annotations

import time
from pathlib import Path

from notifiers.intake import new_event_id, parse_flux_event
from tests.notifiers.fakes import (
    FakeDestination,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    flux_event,
    holds_throughout,
    make_bridge,
)

NO_GROUPING = {"group_by": ["..."], "group_wait": "0s"}


def event(name: str, **kw: object):  # type: ignore[no-untyped-def]
    return parse_flux_event(
        flux_event(name, **kw),
        cluster_from_request="c1",
        default_cluster="d",  # type: ignore[arg-type]
        now=time.time(),
        event_id=new_event_id(),
    )


async def test_order_per_object_is_kept_across_retries(tmp_path: Path) -> None:
    dest = await FakeDestination().start()
    dest.by_name["podinfo"] = [Step(500), Step(500)]
    bridge = make_bridge(
        bridge_config(
            tmp_path, {"ci": fast_webhook(dest.url)}, {"destinations": ["ci"], **NO_GROUPING}
        )
    )
    await bridge.start(serve=False)
    try:
        await bridge.submit([event("podinfo")])
        await bridge.submit([event("podinfo", severity="info", reason="ReconciliationSucceeded")])
        await bridge.submit([event("other")])
        await eventually(lambda: len(dest.applied) == 3)
        order = [e["name"] + ":" + e["status"] for e in dest.applied_events()]
        assert order.index("podinfo:failing") < order.index("podinfo:ready")
        assert order.index("other:failing") < order.index("podinfo:ready")  # not held back
        assert len(dest.requests) == 5
    finally:
        await bridge.stop()
        await dest.stop()


async def test_dead_destination_does_not_slow_the_others(tmp_path: Path) -> None:
    good = await FakeDestination().start()
    bad = await FakeDestination(default=Step(200, delay=5.0)).start()  # hangs until timeout
    dests = {
        "good": fast_webhook(good.url),
        "bad": fast_webhook(bad.url, timeout="2s", max_in_flight=2),
    }
    bridge = make_bridge(
        bridge_config(tmp_path, dests, {"destinations": ["bad", "good"], **NO_GROUPING})
    )
    await bridge.start(serve=False)
    try:
        for i in range(20):
            await bridge.submit([event(f"app-{i}")])
        await eventually(lambda: len(good.applied) == 20, within=5)
        # All 20 reached the good destination while the bad one's first attempts were still
        # hanging: not one of them has finished (the 2 s timeout), so none held the others up.
        await eventually(lambda: len(bad.requests) == 2)  # its max_in_flight, both stuck
        bad_attempts_finished = sum(
            bridge.metrics.registry.get_sample_value(
                "fluxwatch_bridge_deliveries_total", {"destination": "bad", "outcome": outcome}
            )
            or 0.0
            for outcome in ("delivered", "retry", "dead")
        )
        assert bad_attempts_finished == 0
        assert len(bad.applied) == 0
    finally:
        await bridge.stop()
        await good.stop()
        await bad.stop()


async def test_circuit_breaker_opens_on_a_failing_destination(tmp_path: Path) -> None:
    dest = await FakeDestination(default=Step(503)).start()
    webhook = fast_webhook(dest.url, circuit_breaker={"failures": 3, "cooldown": "10s"})
    bridge = make_bridge(
        bridge_config(tmp_path, {"ci": webhook}, {"destinations": ["ci"], **NO_GROUPING})
    )
    await bridge.start(serve=False)
    try:
        for i in range(10):
            await bridge.submit([event(f"app-{i}")])
        await eventually(
            lambda: (
                bridge.metrics.registry.get_sample_value(
                    "fluxwatch_bridge_circuit_open", {"destination": "ci"}
                )
                == 1.0
            )
        )
        seen = len(dest.requests)
        assert seen <= 3 + 8  # at most the in-flight ones when it opened
        # While open (cooldown 10s), the dispatcher keeps running but sends nothing.
        await holds_throughout(lambda: len(dest.requests) == seen, during=0.5)
    finally:
        await bridge.stop()
        await dest.stop()


async def test_rate_limit_spaces_deliveries(tmp_path: Path) -> None:
    dest = await FakeDestination().start()
    webhook = fast_webhook(dest.url, rate_limit={"per_second": 20, "burst": 1})
    bridge = make_bridge(
        bridge_config(tmp_path, {"ci": webhook}, {"destinations": ["ci"], **NO_GROUPING})
    )
    await bridge.start(serve=False)
    try:
        for i in range(10):
            await bridge.submit([event(f"app-{i}")])
        await eventually(lambda: len(dest.applied) == 10)
        span = dest.requests[-1].at - dest.requests[0].at
        assert span >= 0.4  # 9 intervals of 50 ms
    finally:
        await bridge.stop()
        await dest.stop()
