"""Two bridge replicas on one PostgreSQL outbox behave as one bridge: a group whose events
arrive at both is one notification, an object's repeated state is de-duplicated whichever replica
hears it, destinations are shared out, and a replica that stops hands its destinations over at
once. (Separate processes, kill -9 and database restarts: tests/ha/.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from notifiers.app import Bridge
from tests.notifiers import fakes
from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    query_outbox,
)
from tests.notifiers.test_slack_incident_is_one_thread import transition


@pytest.fixture(autouse=True)
def shared_database(postgres_dsn: str) -> Iterator[None]:
    fakes.OUTBOX_POSTGRES_DSN = postgres_dsn  # bridge_config points every replica at it
    yield
    fakes.OUTBOX_POSTGRES_DSN = None


def config(
    tmp_path: Path, destinations: dict[str, Any], lease: str = "2s", **route: Any
) -> dict[str, Any]:
    doc = bridge_config(
        tmp_path / "state",
        destinations,
        {"destinations": sorted(destinations), "group_wait": "0s", **route},
    )
    doc["bridge"]["outbox"]["postgres"]["lease"] = lease
    return doc


@asynccontextmanager
async def replicas(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...] = ("a", "b")
) -> AsyncIterator[list[Bridge]]:
    started: list[Bridge] = []
    try:
        for name in names:
            monkeypatch.setenv("FLUXWATCH_REPLICA_ID", name)
            bridge = make_bridge(doc)
            await bridge.start(serve=False)
            started.append(bridge)
        yield started
    finally:
        for bridge in started:
            await bridge.stop()


def held(bridge: Bridge) -> set[str]:
    assert bridge.dispatcher is not None
    return set(bridge.dispatcher.held or ())


def sample(bridge: Bridge, name: str) -> float | None:
    value = bridge.metrics.registry.get_sample_value(name)
    return None if value is None else float(value)


async def test_a_group_whose_events_arrive_at_both_replicas_is_one_notification(
    tmp_path: Path, destination: FakeDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = config(
        tmp_path,
        {"hook": fast_webhook(destination.url)},
        group_wait="1500ms",
        group_by=["cluster", "status"],
    )
    async with replicas(doc, monkeypatch) as (a, b):
        t0 = time.time()
        for i in range(6):
            bridge = (a, b)[i % 2]
            await bridge.accept_transition(
                transition("failing", "failing", "HealthCheckFailed", t0 + i, name=f"app-{i}")
            )
        await eventually(lambda: len(destination.applied) == 1)
        state = tmp_path / "state"
        await eventually(
            lambda: query_outbox(state, "SELECT status FROM notifications") == [("delivered",)]
        )
        assert query_outbox(state, "SELECT count(*) FROM deliveries WHERE status = 'pending'") == [
            (0,)
        ]
        for bridge in (a, b):  # both wrote: their connections' use is measured
            assert (sample(bridge, "fluxwatch_bridge_outbox_busy_seconds_total") or 0) > 0
    assert len(destination.requests) == 1
    names = sorted(e["name"] for e in destination.applied_events())
    assert names == [f"app-{i}" for i in range(6)]


async def test_a_repeated_state_is_deduplicated_whichever_replica_hears_it(
    tmp_path: Path, destination: FakeDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = config(tmp_path, {"hook": fast_webhook(destination.url)})
    async with replicas(doc, monkeypatch) as (a, b):
        t0 = time.time()
        await a.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await b.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0 + 1))
        await a.accept_transition(transition("recovered", "ready", "Succeeded", t0 + 2))
        await eventually(lambda: len(destination.applied) == 2)
    statuses = [e["status"] for e in destination.applied_events()]
    assert statuses == ["failing", "ready"]  # the repeat heard by b was not sent again
    decisions = query_outbox(tmp_path / "state", "SELECT decision FROM events ORDER BY seq")
    assert [d for (d,) in decisions].count("duplicate") == 1


async def test_destinations_are_shared_out_and_a_stopping_replica_hands_its_own_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = await FakeDestination().start(), await FakeDestination().start()
    try:
        doc = config(tmp_path, {"one": fast_webhook(one.url), "two": fast_webhook(two.url)})
        async with replicas(doc, monkeypatch) as (a, b):
            # a started alone and took both; b's arrival makes a hand one over
            await eventually(lambda: held(a) | held(b) == {"one", "two"} and len(held(b)) == 1)
            assert held(a).isdisjoint(held(b))
            assert sample(a, "fluxwatch_bridge_outbox_replicas") == 2
            assert sample(b, "fluxwatch_bridge_outbox_destinations_owned") == 1
            await a.stop()  # a clean stop hands over at once: no lease runs out
            await eventually(lambda: held(b) == {"one", "two"})
            await b.accept_transition(
                transition("failing", "failing", "HealthCheckFailed", time.time())
            )
            await eventually(lambda: len(one.applied) == 1 and len(two.applied) == 1)
            assert sample(b, "fluxwatch_bridge_outbox_lease_takeovers_total") == 0
    finally:
        await one.stop()
        await two.stop()


async def test_the_holder_delivers_what_the_other_replica_stored(
    tmp_path: Path, destination: FakeDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long lease: the lease rounds' look at the disk (every 20 s) cannot be what finds it.
    doc = config(tmp_path, {"hook": fast_webhook(destination.url)}, lease="60s")
    async with replicas(doc, monkeypatch) as (a, b):
        holder, other = (a, b) if held(a) else (b, a)
        assert held(holder) == {"hook"}
        assert held(other) == set()
        await other.accept_transition(
            transition("failing", "failing", "HealthCheckFailed", time.time())
        )
        await eventually(lambda: len(destination.applied) == 1, within=10.0)
