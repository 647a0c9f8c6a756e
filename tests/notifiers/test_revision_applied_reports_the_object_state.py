"""A ``revision_applied`` transition is announced with the state the object is in: a HelmRelease
that applied a chart whose tests failed is FAILING, not OK."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from notifiers.intake import new_event_id, parse_transition
from tests.notifiers.fakes import bridge_config, eventually, make_bridge


def applied(status: str, reason: str) -> dict[str, Any]:
    return {
        "type": "revision_applied",
        "cluster": "c1",
        "timestamp": 1_796_000_000.0,
        "kind": "HelmRelease",
        "namespace": "search",
        "name": "frontend",
        "uid": "u-hr",
        "status": status,
        "previous_status": "ready",
        "reason": reason,
        "message": "",
        "revision": "6.35.0",
        "previous_revision": "6.34.2",
        "tenant": "",
        "labels": {},
        "annotations": {},
        "root_cause": None,
        "latency_seconds": 12.0,
    }


CASES = [
    # (object status, reason, event status, severity)
    ("ready", "UpgradeSucceeded", "ready", "info"),
    ("failing", "TestFailed", "failing", "error"),
    ("stalled", "RetriesExceeded", "stalled", "error"),
    ("progressing", "Progressing", "progressing", "info"),
    ("", "UpgradeSucceeded", "ready", "info"),  # a sender that does not say: as before
]


@pytest.mark.parametrize(("status", "reason", "expected", "severity"), CASES)
def test_status_follows_the_object(status: str, reason: str, expected: str, severity: str) -> None:
    event = parse_transition(applied(status, reason), now=1.0, event_id=new_event_id())
    assert (event.status, event.severity, event.type) == (expected, severity, "revision_applied")
    assert event.revision == "6.35.0"


async def test_failed_tests_are_not_announced_as_ok(tmp_path: Path) -> None:
    out = io.StringIO()
    doc = bridge_config(
        tmp_path, {"demo": {"type": "console"}}, {"destinations": ["demo"], "group_wait": "0s"}
    )
    bridge = make_bridge(doc, console=out)
    await bridge.start(serve=False)
    try:
        await bridge.accept_transition(applied("failing", "TestFailed"))
        await eventually(lambda: "HelmRelease search/frontend" in out.getvalue())
        line = out.getvalue().splitlines()[0]
        assert ": FAILING HelmRelease search/frontend on c1 rev 6.35.0 (TestFailed)" in line
        assert " OK " not in line
    finally:
        await bridge.stop()
