"""De-duplication on state changes: repeats dropped in the window, recovery once, rollouts
once per revision."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifiers.dedup import DedupState, decide
from notifiers.model import Event

WINDOW = 3600.0
BASE = Event(
    id="e",
    source="flux",
    type="event",
    cluster="c",
    kind="Kustomization",
    namespace="ns",
    name="app",
    status="failing",
    severity="error",
    reason="HealthCheckFailed",
    message="m",
    received_at=0,
    occurred_at=0,
    revision="main@sha1:aaa",
)
FAILING = DedupState("failing", "HealthCheckFailed", "main@sha1:aaa", 1000.0, True, "main@sha1:000")
READY = DedupState(
    "ready", "ReconciliationSucceeded", "main@sha1:aaa", 1000.0, False, "main@sha1:aaa"
)

CASES = [
    ("first-failure", None, BASE, 1000.0, True, "new"),
    ("same-failure-in-window", FAILING, BASE, 1500.0, False, "duplicate"),
    ("same-failure-after-window", FAILING, BASE, 1000.0 + WINDOW, True, "repeat_after_window"),
    ("other-reason", FAILING, replace(BASE, reason="BuildFailed"), 1500.0, True, "changed"),
    (
        "same-failure-from-the-exporter",
        FAILING,
        replace(BASE, source="transition", type="failing"),
        1500.0,
        False,
        "duplicate",
    ),
    (
        "same-failure-without-a-revision",
        FAILING,
        replace(BASE, revision=""),
        1500.0,
        False,
        "duplicate",
    ),
    (
        "new-revision-still-failing",
        FAILING,
        replace(BASE, revision="main@sha1:bbb"),
        1500.0,
        True,
        "changed",
    ),
    (
        "recovery-after-failure",
        FAILING,
        replace(BASE, status="ready", severity="info"),
        1500.0,
        True,
        "recovery",
    ),
    (
        "routine-success-same-revision",
        READY,
        replace(BASE, status="ready"),
        1500.0,
        False,
        "once_per_revision",
    ),
    (
        "rollout-new-revision",
        READY,
        replace(BASE, status="ready", revision="main@sha1:ccc"),
        1500.0,
        True,
        "new_revision",
    ),
    ("first-rollout", None, replace(BASE, status="ready"), 0.0, True, "new_revision"),
    (
        "ready-without-revision-repeat",
        replace(READY, revision="", applied_revision=""),
        replace(BASE, status="ready", revision=""),
        1500.0,
        False,
        "no_change",
    ),
    ("stalled-after-failing", FAILING, replace(BASE, status="stalled"), 1500.0, True, "changed"),
    ("suspended-once", READY, replace(BASE, status="suspended"), 1500.0, True, "changed"),
    (
        "suspended-repeat",
        replace(READY, status="suspended"),
        replace(BASE, status="suspended"),
        1500.0,
        False,
        "duplicate",
    ),
]


@pytest.mark.parametrize(
    ("prev", "ev", "now", "send", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(prev: DedupState | None, ev: Event, now: float, send: bool, reason: str) -> None:
    decision = decide(prev, ev, now, WINDOW)
    assert (decision.send, decision.reason) == (send, reason)


def test_recovery_is_sent_once() -> None:
    ready = replace(BASE, status="ready", severity="info")
    first = decide(FAILING, ready, 1500.0, WINDOW)
    second = decide(first.state, ready, 1600.0, WINDOW)
    assert first.send
    assert first.reason == "recovery"
    assert not second.send
