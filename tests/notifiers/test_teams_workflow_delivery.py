"""Teams through the bridge, against a fake Workflows endpoint that checks the card's schema."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.notifiers.chat_fakes import FakeTeams
from tests.notifiers.fakes import bridge_config, eventually, make_bridge
from tests.notifiers.test_slack_incident_is_one_thread import transition


def statuses(state: Path) -> dict[str, int]:
    with sqlite3.connect(state / "outbox.sqlite3") as conn:
        return dict(conn.execute("SELECT status, count(*) FROM notifications GROUP BY status"))


def teams_destination(url_file: Path, **extra: object) -> dict[str, object]:
    return {
        "type": "teams",
        "url_file": str(url_file),
        "timeout": "2s",
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 5},
        "circuit_breaker": {"failures": 1000, "cooldown": "100ms"},
        **extra,
    }


@pytest.mark.parametrize("shape", ["message", "card"])
async def test_failing_and_recovered_cards_are_accepted(tmp_path: Path, shape: str) -> None:
    teams = await FakeTeams(bare_card=shape == "card").start()
    teams.script = [(429, {"Retry-After": "1"}), (503, {})]  # throttled, then a hiccup
    (tmp_path / "url").write_text(teams.url)
    doc = bridge_config(
        tmp_path / "state", {"teams": teams_destination(tmp_path / "url", shape=shape)}
    )
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await eventually(lambda: len(teams.cards) == 1)
        await bridge.accept_transition(
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 60)
        )
        await eventually(lambda: statuses(tmp_path / "state") == {"delivered": 2})
    finally:
        await bridge.stop()
        await teams.stop()
    assert teams.rejected == []
    failing, recovered = teams.cards
    assert failing["body"][0]["style"] == "attention"
    assert failing["body"][0]["items"][0]["text"] == "Failing: Kustomization apps/podinfo"
    assert recovered["body"][0]["style"] == "good"


async def test_a_refused_card_is_a_dead_letter(tmp_path: Path) -> None:
    teams = await FakeTeams(bare_card=True).start()  # a flow that wants the bare card
    (tmp_path / "url").write_text(teams.url)
    doc = bridge_config(tmp_path / "state", {"teams": teams_destination(tmp_path / "url")})
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    try:
        await bridge.accept_transition(
            transition("failing", "failing", "HealthCheckFailed", time.time())
        )
        await eventually(lambda: statuses(tmp_path / "state") == {"dead": 1})
    finally:
        await bridge.stop()
        await teams.stop()
    with sqlite3.connect(tmp_path / "state" / "outbox.sqlite3") as conn:
        (error, code) = conn.execute(
            "SELECT last_error, last_status_code FROM notifications"
        ).fetchone()
    assert code == 400
    assert "InvalidRequestContent" in error
    assert "sig=" not in error
