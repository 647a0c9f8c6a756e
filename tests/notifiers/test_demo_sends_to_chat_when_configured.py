"""`fluxwatch demo` adds Slack and Teams destinations only when their env variables are set."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxwatch.commands.demo import demo_bridge_config


def test_console_only_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLUXWATCH_SLACK_TOKEN", "FLUXWATCH_SLACK_CHANNEL", "FLUXWATCH_TEAMS_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "key").write_text("k")
    config = demo_bridge_config(tmp_path, "127.0.0.1:0", tmp_path / "key")
    assert sorted(config.destinations) == ["console"]


def test_slack_and_teams_join_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUXWATCH_SLACK_TOKEN", "xoxb-demo-token")
    monkeypatch.setenv("FLUXWATCH_SLACK_CHANNEL", "#flux-demo")
    monkeypatch.setenv(
        "FLUXWATCH_TEAMS_WEBHOOK_URL", "https://prod-01.westus.logic.azure.com/workflows/x?sig=y"
    )
    (tmp_path / "key").write_text("k")
    config = demo_bridge_config(tmp_path, "127.0.0.1:0", tmp_path / "key")
    assert sorted(config.destinations) == ["console", "slack", "teams"]
    assert config.destinations["slack"].type == "slack"
    assert "xoxb-demo-token" not in repr(config)
    assert sorted(config.route.destinations) == ["console", "slack", "teams"]
