"""De-duplication state survives a crash: events stored after the last snapshot are replayed."""

from __future__ import annotations

import time
from pathlib import Path

from notifiers.intake import new_event_id, parse_flux_event
from notifiers.model import Event
from tests.notifiers.fakes import bridge_config, flux_event, make_bridge, stored_events


def event(**kw: object) -> Event:
    return parse_flux_event(
        flux_event("podinfo", **kw),  # type: ignore[arg-type]
        cluster_from_request="c1",
        default_cluster="d",
        now=time.time(),
        event_id=new_event_id(),
    )


async def test_recovery_is_still_owed_after_a_crash(tmp_path: Path) -> None:
    doc = bridge_config(tmp_path / "state", {"sink": {"type": "console"}})
    first = make_bridge(doc)
    await first.start(serve=False)
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
