"""Noise control through the running bridge: a recovery inside failing_for reaches nobody, a
lasting failure does once, min_events waits for the count, and a hold survives a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    open_store,
    query_outbox,
)
from tests.notifiers.test_slack_incident_is_one_thread import transition

pytestmark = pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL


def deliveries(state: Path) -> dict[str, int]:
    return dict(query_outbox(state, "SELECT status, count(*) FROM deliveries GROUP BY status"))


def config(tmp_path: Path, url: str, **noise: Any) -> dict[str, Any]:
    route = {"destinations": ["hook"], "group_wait": "0s", "group_interval": "0s", **noise}
    return bridge_config(tmp_path / "state", {"hook": fast_webhook(url)}, route)


async def test_recovery_inside_failing_for_sends_nothing(
    tmp_path: Path, destination: FakeDestination
) -> None:
    bridge = make_bridge(config(tmp_path, destination.url, failing_for="1s"))
    await bridge.start(serve=False)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await bridge.accept_transition(
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 0.1)
        )
        # the held failure is dropped when its hold ends
        await eventually(lambda: deliveries(tmp_path / "state") == {"cancelled": 1})
    finally:
        await bridge.stop()
    assert destination.requests == []
    # dropped holds do not pin their rows: retention removes them like delivered ones
    store = open_store(tmp_path / "state")
    try:
        removed = store.prune(
            now=time.time() + 8 * 86400,
            retention=7 * 86400,
            dead_retention=30 * 86400,
            dedup_window=3600,
        )
    finally:
        store.close()
    assert removed["deliveries"] == 1
    assert removed["events"] == 2


async def test_a_failure_that_lasts_is_sent_once_after_the_hold(
    tmp_path: Path, destination: FakeDestination
) -> None:
    bridge = make_bridge(config(tmp_path, destination.url, failing_for="1s"))
    await bridge.start(serve=False)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await eventually(lambda: len(destination.applied) == 1)
        sent_at = time.time()
    finally:
        await bridge.stop()
    assert sent_at - t0 >= 1.0
    assert [e["status"] for e in destination.applied_events()] == ["failing"]


async def test_min_events_waits_for_the_count(tmp_path: Path, destination: FakeDestination) -> None:
    bridge = make_bridge(config(tmp_path, destination.url, min_events=3, min_events_window="30s"))
    await bridge.start(serve=False)
    t0 = time.time()
    try:
        for i in range(2):  # Flux repeats the same error
            await bridge.accept_transition(
                transition("failing", "failing", "HealthCheckFailed", t0 + i)
            )
        assert deliveries(tmp_path / "state") == {"pending": 1}  # held, not sent
        await bridge.accept_transition(
            transition("failing", "failing", "HealthCheckFailed", t0 + 2)
        )
        await eventually(lambda: len(destination.applied) == 1)  # third one: released at once
    finally:
        await bridge.stop()
    assert time.time() - t0 < 30


async def test_a_hold_survives_a_restart(tmp_path: Path, destination: FakeDestination) -> None:
    doc = config(tmp_path, destination.url, failing_for="2s")
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    t0 = time.time()
    await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
    await bridge.stop()
    assert destination.requests == []
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    try:
        await bridge.accept_transition(  # a recovery after the restart still cancels both
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 0.5)
        )
        await eventually(lambda: deliveries(tmp_path / "state") == {"cancelled": 1})
    finally:
        await bridge.stop()
    assert destination.requests == []
