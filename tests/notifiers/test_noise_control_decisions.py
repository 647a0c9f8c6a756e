"""failing_for and min_events: the pure decisions, table-driven, the clock passed in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxwatch.cli import main
from notifiers.noise import (
    NoisePolicy,
    held_group_key,
    hold_until,
    parse_held_group_key,
    ready_early,
    recovery_cancels,
    release_held,
)

FOR_5M = NoisePolicy(failing_for=300)
THREE_IN_10M = NoisePolicy(min_events=3, min_events_window=600)
BOTH = NoisePolicy(failing_for=300, min_events=3, min_events_window=600)


@pytest.mark.parametrize(
    ("policy", "bad", "expected"),
    [
        (NoisePolicy(), True, None),
        (FOR_5M, False, None),
        (FOR_5M, True, 1300.0),
        (THREE_IN_10M, True, 1600.0),
        (BOTH, True, 1600.0),
        (NoisePolicy(min_events=1), True, None),  # one event is every event: no hold
    ],
)
def test_hold_until(policy: NoisePolicy, bad: bool, expected: float | None) -> None:
    assert hold_until(policy, bad=bad, now=1000.0) == expected


@pytest.mark.parametrize(
    ("policy", "still_bad", "times", "expected"),
    [
        (FOR_5M, True, [1000.0], (True, "held_then_sent")),
        (FOR_5M, False, [1000.0], (False, "recovered_within_failing_for")),
        (THREE_IN_10M, True, [1000.0, 1100.0], (False, "below_min_events")),
        (THREE_IN_10M, True, [1000.0, 1100.0, 1599.0], (True, "held_then_sent")),
        (THREE_IN_10M, True, [1000.0, 1100.0, 1601.0], (False, "below_min_events")),
        (BOTH, False, [1000.0, 1001.0, 1002.0], (False, "recovered_within_failing_for")),
    ],
)
def test_release_held(
    policy: NoisePolicy, still_bad: bool, times: list[float], expected: tuple[bool, str]
) -> None:
    assert release_held(policy, still_bad=still_bad, bad_times=times, held_at=1000.0) == expected


@pytest.mark.parametrize(
    ("policy", "times", "expected"),
    [
        (THREE_IN_10M, [1000.0, 1010.0], False),
        (THREE_IN_10M, [1000.0, 1010.0, 1020.0], True),
        (THREE_IN_10M, [900.0, 1010.0, 1020.0], False),  # before the hold began: not counted
        (BOTH, [1000.0, 1010.0, 1020.0], False),  # failing_for still has to pass
    ],
)
def test_min_events_releases_early(policy: NoisePolicy, times: list[float], expected: bool) -> None:
    assert ready_early(policy, times, held_at=1000.0, now=1020.0) is expected


@pytest.mark.parametrize(
    ("held_due", "now", "expected"),
    [(None, 1000.0, False), (1300.0, 1100.0, True), (1300.0, 1300.0, False)],
)
def test_a_recovery_inside_the_window_cancels_both(
    held_due: float | None, now: float, expected: bool
) -> None:
    assert recovery_cancels(held_due, now) is expected


def test_held_group_key_round_trips() -> None:
    key = held_group_key("route|status=failing", BOTH, "c1/Kustomization/apps/x y")
    assert parse_held_group_key(key) == (BOTH, "c1/Kustomization/apps/x y")
    assert parse_held_group_key("route|status=failing") is None


def test_explain_says_what_happens() -> None:
    assert BOTH.explain() == (
        "failures held 300s and sent only if still failing; sent once 3 failures arrive within 600s"
    )
    assert NoisePolicy().explain() == ""


def test_routes_test_explains_noise_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "fluxwatch.yaml"
    cfg.write_text(
        json.dumps(
            {
                "bridge": {
                    "destinations": {"c": {"type": "console"}},
                    "route": {"destinations": ["c"], "failing_for": "5m", "min_events": 3},
                }
            }
        )
    )
    event = Path(__file__).parent / "testdata" / "event-payments-failing.json"
    assert main(["bridge", "routes", "test", "--config", str(cfg), "--event", str(event)]) == 0
    assert (
        "     noise control: failures held 300s and sent only if still failing; "
        "sent once 3 failures arrive within 600s"
    ) in capsys.readouterr().out
