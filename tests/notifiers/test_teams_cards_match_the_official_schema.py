"""Every card the Teams destination can produce validates against the Adaptive Cards 1.4 schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings

from notifiers.providers.teams import (
    BODY_BUDGET,
    CARD_CONTENT_TYPE,
    TeamsOptions,
    build_teams_body,
)
from tests.notifiers.notification_samples import event, kinds, notification, notifications

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "adaptive-card-1.4.json").read_text())
VALIDATOR = jsonschema.Draft6Validator(SCHEMA)
OPTIONS = TeamsOptions(
    url="https://prod-07.westeurope.logic.azure.com/workflows/x?sig=s",
    dashboard_url="https://grafana.example.com/d/flux?var-cluster={cluster}&var-name={name}",
    runbook_url="https://runbooks.example.com/flux/{kind}",
)


def card_of(body: bytes, shape: str = "message") -> Any:
    doc = json.loads(body)
    if shape == "card":
        return doc
    assert doc["type"] == "message"
    (attachment,) = doc["attachments"]
    assert attachment["contentType"] == CARD_CONTENT_TYPE
    return attachment["content"]


def errors(card: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(card)]


def test_the_schema_rejects_what_workflows_refuse() -> None:
    # The check has teeth: an unknown property or action type fails it.
    assert errors({"type": "AdaptiveCard", "version": "1.4", "msteams": {}})
    assert errors(
        {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": 1}]}
    )


@pytest.mark.parametrize("shape", ["message", "card"])
@pytest.mark.parametrize("sample", sorted(kinds()))
def test_every_message_kind_is_a_valid_card(sample: str, shape: str) -> None:
    options = TeamsOptions(url=OPTIONS.url, shape=shape, dashboard_url=OPTIONS.dashboard_url)  # type: ignore[arg-type]
    card = card_of(build_teams_body(kinds()[sample], options), shape)
    assert card["version"] == "1.4"
    assert errors(card) == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(n=notifications())
def test_generated_notifications_are_valid_cards_within_budget(n: Any) -> None:
    body = build_teams_body(n, OPTIONS)
    assert len(body) <= BODY_BUDGET
    assert errors(card_of(body)) == []


def test_a_100_kb_message_is_cut_with_a_visible_marker() -> None:
    body = build_teams_body(notification(event(message="x" * 100_000)), OPTIONS)
    assert len(body) <= BODY_BUDGET
    texts = [b.get("text", "") for b in card_of(body)["body"]]
    assert any("[truncated:" in t for t in texts)


def test_buttons_open_commit_dashboard_and_runbook() -> None:
    card = card_of(build_teams_body(kinds()["failing"], OPTIONS))
    assert [(a["type"], a["title"]) for a in card["actions"]] == [
        ("Action.OpenUrl", "View commit"),
        ("Action.OpenUrl", "Dashboard"),
        ("Action.OpenUrl", "Runbook"),
    ]
    assert card["actions"][0]["url"].startswith(
        "https://github.com/example/fleet-infra/commit/802723078aff"
    )
    assert "var-cluster=prod-eu-1&var-name=podinfo" in card["actions"][1]["url"]


@pytest.mark.parametrize(
    ("sample", "style"),
    [
        ("failing", "attention"),
        ("stalled", "warning"),
        ("recovered", "good"),
        ("rollout", "accent"),
    ],
)
def test_colour_per_status(sample: str, style: str) -> None:
    card = card_of(build_teams_body(kinds()[sample], OPTIONS))
    assert card["body"][0]["style"] == style
