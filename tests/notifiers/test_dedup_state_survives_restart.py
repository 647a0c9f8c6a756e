"""De-duplication state survives a crash: events stored after the last snapshot are replayed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from notifiers.model import Event
from tests.notifiers.fakes import (
    bridge_config,
    make_bridge,
    parsed_flux_event,
    query_outbox,
    stored_events,
)

pytestmark = pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL


def event(**kw: object) -> Event:
    return parsed_flux_event("podinfo", **kw)


async def test_recovery_is_still_owed_after_a_crash(tmp_path: Path) -> None:
    doc = bridge_config(tmp_path / "state", {"sink": {"type": "console"}})
    first = make_bridge(doc)
    await first.start(serve=False)
    # The maintenance poll would otherwise write a periodic snapshot and hide the replay.
    first.outbox._next_snapshot = time.time() + 3600
    await first.submit([event()])
    # Stand in for kill -9 before the periodic snapshot: nothing of the state is written.
    first.outbox._dirty_dedup.clear()
    await first.stop()

    second = make_bridge(doc)
    await second.start(serve=False)
    try:
        await second.submit([event()])  # the same failure again: a duplicate
        await second.submit([event(severity="info", reason="ReconciliationSucceeded")])
    finally:
        await second.stop()
    decisions = [e["decision"] for e in stored_events(tmp_path / "state")]
    assert decisions == ["new", "duplicate", "recovery"]


async def test_replay_still_covers_new_events_after_prune_emptied_the_table(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    doc = bridge_config(state, {"sink": {"type": "console"}})
    first = make_bridge(doc)
    await first.start(serve=False)
    await first.submit([event()])
    await first.stop()  # the final snapshot marks event 1 as covered
    # Stand in for prune after the retention: every covered event is deleted.
    query_outbox(state, "DELETE FROM events")

    second = make_bridge(doc)
    await second.start(serve=False)
    second.outbox._next_snapshot = time.time() + 3600
    await second.submit([event(severity="info", reason="ReconciliationSucceeded")])
    second.outbox._dirty_dedup.clear()  # kill -9 before the next snapshot
    await second.stop()

    third = make_bridge(doc)
    await third.start(serve=False)
    try:
        await third.submit([event()])  # failing again after the recovery: a change, not a repeat
    finally:
        await third.stop()
    decisions = [e["decision"] for e in stored_events(state)]
    assert decisions == ["recovery", "changed"]
