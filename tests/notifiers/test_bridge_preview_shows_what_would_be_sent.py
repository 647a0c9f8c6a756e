"""`fluxwatch bridge preview` prints the destination's exact request bodies with secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxwatch.cli import main

TESTDATA = Path(__file__).parent / "testdata"
TOKEN = "xoxb-preview-secret-token-4711"
WORKFLOW = (
    "https://prod-07.westeurope.logic.azure.com/workflows/0f1e/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sig=previewSIGNATUREsecret"
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "token").write_text(TOKEN)
    monkeypatch.setenv("FW_PREVIEW_TEAMS_URL", WORKFLOW)
    path = tmp_path / "fluxwatch.yaml"
    path.write_text(
        json.dumps(
            {
                "bridge": {
                    "destinations": {
                        "chat": {"type": "slack", "token_file": "token", "channel": "#flux"},
                        "teams": {"type": "teams", "url_env": "FW_PREVIEW_TEAMS_URL"},
                    }
                }
            }
        )
    )
    return path


def body_after_comments(text: str) -> object:
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))


def test_slack_preview_is_block_kit_with_the_token_masked(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = str(TESTDATA / "event-payments-failing.json")
    assert main(["bridge", "preview", "--config", str(config), "--destination", "chat",
                 "--event", event, "--cluster", "prod-eu-1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert TOKEN not in out
    assert "# Authorization: Bearer ***" in out
    assert "# chat.postMessage: POST https://slack.com/api/chat.postMessage" in out
    body = body_after_comments(out)
    assert isinstance(body, dict)
    assert body["channel"] == "#flux"
    assert body["blocks"][0]["text"]["text"] == ":red_circle: Failing: HelmRelease payments/api"


def test_teams_preview_is_the_card_with_the_url_masked(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = str(TESTDATA / "transition-revision-applied.yaml")
    assert main(["bridge", "preview", "--config", str(config), "--destination", "teams",
                 "--event", event]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "previewSIGNATUREsecret" not in out
    assert "POST https://prod-07.westeurope.logic.azure.com/<redacted>" in out
    body = body_after_comments(out)
    assert isinstance(body, dict)
    card = body["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["items"][0]["text"] == "Rolled out: Kustomization apps/podinfo"


def test_unknown_destination_exits_2_listing_the_known_ones(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = str(TESTDATA / "event-payments-failing.json")
    assert main(["bridge", "preview", "--config", str(config), "--destination", "nope",
                 "--event", event]) == 2  # fmt: skip
    assert "unknown destination 'nope' (known: chat, teams)" in capsys.readouterr().err
