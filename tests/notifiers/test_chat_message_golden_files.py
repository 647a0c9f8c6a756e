"""Golden files: every message kind as Slack Block Kit and as a Teams Adaptive Card.

Regenerate with ``UPDATE_GOLDEN=1`` after an intended change and review the diff: these files
are what people see in their channels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from notifiers.providers.slack_plan import SlackOptions, plan_slack
from notifiers.providers.teams import TeamsOptions, build_teams_body
from tests.notifiers.notification_samples import kinds

GOLDEN = Path(__file__).parent / "golden" / "chat"
SLACK = SlackOptions(
    mode="bot",
    token="xoxb-not-used",
    channel="C0FLUX",
    dashboard_url="https://grafana.example.com/d/flux?var-cluster={cluster}&var-name={name}",
)
TEAMS = TeamsOptions(
    url="https://prod-07.westeurope.logic.azure.com/workflows/x?sig=s",
    dashboard_url=SLACK.dashboard_url,
)


def check(name: str, doc: object) -> None:
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", sorted(kinds()))
def test_slack_message(kind: str) -> None:
    plan = plan_slack(kinds()[kind], SLACK, None)
    check(f"slack-{kind}.json", [{"method": c.method, "args": c.args} for c in plan.calls])


@pytest.mark.parametrize("kind", sorted(kinds()))
def test_teams_card(kind: str) -> None:
    check(f"teams-{kind}.json", json.loads(build_teams_body(kinds()[kind], TEAMS)))
