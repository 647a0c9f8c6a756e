"""Operators following the log see one info-or-above line per delivered notification and one
per dead-lettered one, naming the notification, the destination and the attempts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.notifiers.fakes import (
    FakeDestination,
    Step,
    bridge_config,
    drained,
    eventually,
    fast_webhook,
    make_bridge,
    metric,
    parsed_flux_event,
)


async def test_delivered_and_dead_lettered_are_logged_once_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fluxwatch.bridge")
    dest = await FakeDestination().start()
    dest.by_name["broken"] = [Step(503), Step(410)]  # a retry, then a permanent failure
    route = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}
    bridge = make_bridge(bridge_config(tmp_path, {"ci": fast_webhook(dest.url)}, route))
    await bridge.start(serve=False)
    try:
        for name in ("podinfo", "broken"):
            event = parsed_flux_event(name)
            await bridge.submit([event])
        await eventually(
            lambda: metric(bridge, "fluxwatch_bridge_dead_letters", {"destination": "ci"}) == 1
        )
        await drained(bridge, "ci")
    finally:
        await bridge.stop()
        await dest.stop()
    lines = [
        r
        for r in caplog.records
        if r.name.startswith("fluxwatch.bridge") and r.levelno >= logging.INFO
    ]
    delivered = [
        r.getMessage() for r in lines if r.getMessage().startswith("delivered notification")
    ]
    dead = [
        r.getMessage() for r in lines if r.getMessage().startswith("dead-lettered notification")
    ]
    assert len(delivered) == 1, delivered
    assert " to ci (1 events, attempt 1, HTTP 200)" in delivered[0]
    assert len(dead) == 1, dead
    assert " to ci after 2 attempts (1 events): permanent: HTTP 410" in dead[0]
