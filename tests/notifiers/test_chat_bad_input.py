"""Bad input reaches chat safely: markup, mentions, 100 KB messages, broken escapes, bad tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import REPO_ROOT
from tests.notifiers.chat_fakes import FakeSlack
from tests.notifiers.fakes import bridge_config, eventually, flux_event, make_bridge
from tests.notifiers.test_slack_incident_is_one_thread import (
    TOKEN,
    slack_destination,
    statuses,
    transition,
)

TESTDATA = Path(__file__).parent / "testdata"


async def test_huge_message_with_markup_is_cut_and_delivered(tmp_path: Path) -> None:
    slack = await FakeSlack(TOKEN).start()
    doc = bridge_config(tmp_path / "state", {"chat": slack_destination(tmp_path, slack)})
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    message = ("<!channel> *bold* `code` ```fence``` <@U123|x> & <https://evil|click> " * 2000)[
        :100_000
    ]
    try:
        await bridge.accept_transition(
            transition("failing", "failing", "HealthCheckFailed", time.time(), message=message)
        )
        await eventually(lambda: statuses(tmp_path / "state") == {"delivered": 1})
    finally:
        await bridge.stop()
        await slack.stop()
    (parent,) = slack.parents()
    section = next(
        b["text"]["text"] for b in parent.blocks if b["type"] == "section" and "text" in b
    )
    assert len(section) <= 3000
    assert "[truncated:" in section
    for raw in ("<!channel>", "<@U123", "<https://evil"):
        assert raw not in section


async def test_invalid_utf8_escapes_are_refused_at_intake_and_nothing_is_posted(
    tmp_path: Path,
) -> None:
    slack = await FakeSlack(TOKEN).start()
    doc = bridge_config(tmp_path / "state", {"chat": slack_destination(tmp_path, slack)})
    bridge = make_bridge(doc)
    await bridge.start()
    try:
        body = json.dumps(flux_event(message="x")).replace('"x"', '"bad \\ud800 escape"')
        async with aiohttp.ClientSession() as client:
            url = f"http://127.0.0.1:{bridge.port}/flux/prod-eu-1"
            async with client.post(url, data=body.encode()) as resp:
                assert resp.status == 400
            # A replacement character and astral symbols are fine and arrive intact.
            fine = json.dumps(flux_event(message="caf\ufffd 🚀 \u202e"))
            async with client.post(url, data=fine.encode()) as resp:
                assert resp.status == 202
        await eventually(lambda: len(slack.parents()) == 1)
    finally:
        await bridge.stop()
        await slack.stop()
    assert "caf\ufffd 🚀" in str(slack.parents()[0].blocks)


def test_missing_or_empty_token_file_exits_2_naming_the_key() -> None:
    for name, expected in [
        (
            "bad-slack-token-file-empty.yaml",
            "bridge.destinations.chat.token_file: the file is empty",
        ),
        ("bad-slack-token-file-missing.yaml", "bridge.destinations.chat.token_file: cannot read"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "fluxwatch", "bridge", "--config", str(TESTDATA / name)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr
