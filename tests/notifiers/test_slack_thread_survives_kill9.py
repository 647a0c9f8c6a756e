"""The Slack thread anchor is durable: kill -9 of a bridge subprocess between the failure and the
recovery, restart, and the recovery still replies in the original thread and edits its parent."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiohttp

from tests.notifiers.chat_fakes import FakeSlack
from tests.notifiers.fakes import eventually, flux_event
from tests.notifiers.test_kill9_recovery import kill9, spawn

TOKEN = "xoxb-4242-fluxwatch-kill9-token"


def delivered(state: Path) -> int:
    with sqlite3.connect(state / "outbox.sqlite3") as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM notifications WHERE status = 'delivered'"
        ).fetchone()
    return int(n)


async def test_recovery_after_kill9_replies_in_the_same_thread(tmp_path: Path) -> None:
    slack = await FakeSlack(TOKEN).start()
    (tmp_path / "token").write_text(TOKEN)
    state = tmp_path / "state"
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(
        json.dumps(
            {
                "bridge": {
                    "listen": "127.0.0.1:0",
                    "state_dir": str(state),
                    "route": {"destinations": ["chat"], "group_wait": "0s"},
                    "destinations": {
                        "chat": {
                            "type": "slack",
                            "token_file": str(tmp_path / "token"),
                            "channel": "C0FLUX",
                            "api_url": slack.base_url,
                            "retry": {"initial_backoff": "50ms", "max_backoff": "200ms"},
                        }
                    },
                }
            }
        )
    )
    proc, port = await spawn(config)
    try:
        async with aiohttp.ClientSession() as client:
            failing = flux_event(severity="error", reason="HealthCheckFailed")
            async with client.post(f"http://127.0.0.1:{port}/flux/prod-eu-1", json=failing) as r:
                assert r.status == 202
            # Killed only once the delivery (and with it the anchor) is committed.
            await eventually(lambda: delivered(state) == 1, within=20)
            await kill9(proc)

            proc, port = await spawn(config)
            ok = flux_event(
                severity="info",
                reason="ReconciliationSucceeded",
                message="Applied revision: main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
            )
            async with client.post(f"http://127.0.0.1:{port}/flux/prod-eu-1", json=ok) as r:
                assert r.status == 202
            await eventually(lambda: delivered(state) == 2, within=20)
    finally:
        if proc.returncode is None:
            await kill9(proc)
        await slack.stop()
    (parent,) = slack.parents()
    (reply,) = slack.replies(parent)
    assert reply.thread_ts == parent.ts
    assert parent.updates == 1
    assert parent.text.startswith("Recovered:")
    assert [m for m, _ in slack.calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
