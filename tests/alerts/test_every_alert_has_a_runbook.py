"""Every alert links a runbook that exists and explains it; every runbook belongs to an alert."""

from __future__ import annotations

import pytest

from alerts.render import alerting_rules
from alerts.rules import alert_names
from alerts.settings import AlertSettings
from tests.conftest import REPO_ROOT

RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
SECTIONS = ("## What it means", "## How to confirm", "## How to fix")


@pytest.mark.parametrize("alert", alert_names())
def test_alert_has_a_runbook_with_commands(alert: str) -> None:
    path = RUNBOOKS / f"{alert}.md"
    assert path.is_file(), f"{alert} has no runbook: write docs/runbooks/{alert}.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# {alert}\n")
    for section in SECTIONS:
        assert section in text, f"{path.name} lacks {section!r}"
    assert "flux " in text or "kubectl " in text, f"{path.name} shows no flux/kubectl command"


def test_no_runbook_without_an_alert() -> None:
    assert sorted(p.stem for p in RUNBOOKS.glob("*.md")) == alert_names()


def test_runbook_url_points_at_the_runbook() -> None:
    settings = AlertSettings(runbook_base_url="https://runbooks.example/fluxwatch/")
    for rule in alerting_rules(settings):
        url = rule.as_dict(settings)["annotations"]["runbook_url"]
        assert url == f"https://runbooks.example/fluxwatch/{rule.alert}.md"


def test_every_alert_is_in_docs() -> None:
    docs = (REPO_ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    for alert in alert_names():
        assert f"[{alert}](runbooks/{alert}.md)" in docs, f"docs/alerts.md does not list {alert}"
