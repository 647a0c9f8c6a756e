"""A fleet rollout reaches Slack as ONE message, edited in place as clusters apply it.

Two exporter shards report their clusters to one bridge over HTTP (the rollout path); the
bridge's fleet rollout state goes through a route that sets ``fleet_rollouts`` to the fake Slack
Web API. The rollout is one parent message whose ``chat.update``s carry the counts ("applied on
3/8 clusters, 1 failing (c03)") and end at "rolled out to 8/8"; no cluster gets its own message,
a route without ``fleet_rollouts`` never sees the state, and a revision already everywhere when
the bridge first looks is not announced, and a restart mid-rollout repeats nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.notifiers.chat_fakes import FakeSlack
from tests.pipelines.bridgeharness import (
    BridgeRunner,
    bridge_document,
    post_rollout_report,
    until,
)

SLACK_TOKEN = "xoxb-4242-fluxwatch-rollout-chat"
SHARDS, PER_SHARD = 2, 4
CLUSTERS = [f"c{i:02d}" for i in range(SHARDS * PER_SHARD)]
SHA_A, SHA_B = "a" * 40, "b" * 40
REV_A, REV_B = f"main@sha1:{SHA_A}", f"main@sha1:{SHA_B}"
HEAD = "Kustomization flux-system/apps rev bbbbbbb: "


def obj(
    applied: str, *, wanted: str = "", status: str = "ready", reason: str = ""
) -> dict[str, Any]:
    # an applier object as the exporter reports it
    return dict(
        kind="Kustomization",
        namespace="flux-system",
        name="apps",
        applied=applied,
        attempted=wanted or applied,
        wanted=wanted,
        status=status,
        reason=reason,
        message="",
        applied_at=None,
        source_url="https://github.com/acme/fleet.git",
    )


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(SLACK_TOKEN).start()
    yield fake
    await fake.stop()


def document(tmp_path: Path, slack: FakeSlack) -> dict[str, Any]:
    token_file = tmp_path / "slack-token"
    token_file.write_text(SLACK_TOKEN + "\n")

    def dest(channel: str) -> dict[str, Any]:
        return {
            "type": "slack",
            "token_file": str(token_file),
            "channel": channel,
            "api_url": slack.base_url,
            "retry": {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 5},
            "rate_limit": {"per_second": 50, "burst": 10},
        }

    return bridge_document(
        tmp_path / "state",
        tmp_path / "token",
        rollouts={"status_interval": "0s", "fail_count": 3},
        destinations={"releases": dest("C0FLUX"), "everything": dest("C0OTHER")},
        route={
            "group_wait": "0s",
            "routes": [
                # matches every event, but does not ask for fleet rollout state
                {"name": "everything", "matchers": ['kind=~".*"'], "destinations": ["everything"]},
                {
                    "name": "releases",
                    "matchers": ['source="rollout"'],
                    "destinations": ["releases"],
                    "fleet_rollouts": True,
                },
            ],
        },
    )


class Fleet:
    def __init__(self, runner: BridgeRunner) -> None:
        self.runner = runner
        self.state = {c: obj(REV_A) for c in CLUSTERS}

    async def send(self) -> None:
        for shard in range(SHARDS):
            mine = CLUSTERS[shard * PER_SHARD : (shard + 1) * PER_SHARD]
            await post_rollout_report(
                self.runner.url, shard, SHARDS, {c: [self.state[c]] for c in mine}
            )


def fleet_updates_stored(tmp_path: Path) -> int:
    conn = sqlite3.connect(tmp_path / "state" / "outbox.sqlite3")
    try:
        return int(conn.execute("SELECT count(*) FROM events WHERE source='rollout'").fetchone()[0])
    finally:
        conn.close()


def texts(slack: FakeSlack) -> list[tuple[str, str]]:
    return [(method, str(args.get("text", ""))) for method, args in slack.calls]


async def settled(runner: BridgeRunner, slack: FakeSlack, calls: int) -> None:
    assert runner.bridge is not None
    await until(runner.bridge.rollouts.statuses.idle, "the rollout publisher to drain")
    await until(lambda: len(slack.calls) >= calls, f"{calls} Slack calls")


async def test_a_fleet_rollout_is_one_slack_message_updated_until_rolled_out(
    tmp_path: Path, slack: FakeSlack
) -> None:
    runner = BridgeRunner(document(tmp_path, slack), tmp_path)
    await runner.start()
    fleet = Fleet(runner)
    try:
        await fleet.send()  # REV_A is already everywhere: not news
        assert runner.bridge is not None
        await until(runner.bridge.rollouts.statuses.idle, "the rollout publisher to drain")

        for c in CLUSTERS:  # commit B reaches the fleet
            fleet.state[c] = obj(REV_A, wanted=REV_B)
        await fleet.send()
        await settled(runner, slack, 1)

        for c in CLUSTERS[:3]:
            fleet.state[c] = obj(REV_B)
        fleet.state["c03"] = obj(REV_A, wanted=REV_B, status="failing", reason="HealthCheckFailed")
        await fleet.send()
        await settled(runner, slack, 2)

        for c in CLUSTERS[3:7]:
            fleet.state[c] = obj(REV_B)
        await fleet.send()
        await settled(runner, slack, 3)

        # The last line sent is durable: a restart mid-rollout and the same reports again
        # store and edit nothing.
        sent, updates_stored = len(slack.calls), fleet_updates_stored(tmp_path)
        assert updates_stored == sent  # one stored update per Slack call
        await runner.stop()
        bridge = await runner.start()
        await fleet.send()
        await until(bridge.rollouts.statuses.idle, "the rollout publisher to drain")
        assert fleet_updates_stored(tmp_path) == updates_stored
        assert len(slack.calls) == sent

        fleet.state["c07"] = obj(REV_B)
        await fleet.send()
        await settled(runner, slack, 4)
    finally:
        await runner.stop()

    (parent,) = slack.parents("C0FLUX")
    assert slack.replies(parent) == []
    assert slack.parents("C0OTHER") == []  # the route without fleet_rollouts saw nothing
    calls = texts(slack)
    assert calls[0] == ("chat.postMessage", HEAD + "applied on 0/8 clusters")
    updates = [t for m, t in calls[1:] if m == "chat.update"]
    assert len(updates) == len(calls) - 1
    assert all(args["ts"] == parent.ts for m, args in slack.calls if m == "chat.update")
    # Each shard's report may show its share first, so a step is one or two edits: never one
    # per cluster, never the same line twice, counts only growing, ending rolled out.
    assert len(updates) <= SHARDS * 3
    assert len(set(updates)) == len(updates)
    assert {
        HEAD + "applied on 3/8 clusters, 1 failing (c03)",
        HEAD + "applied on 7/8 clusters",
    } <= set(updates)
    applied = [int(t[len(HEAD) :].split()[2].split("/")[0]) for t in updates[:-1]]
    assert applied == sorted(applied)
    assert updates[-1].startswith(HEAD + "rolled out to 8/8 in ")
    assert parent.updates == len(updates)
    assert parent.text == updates[-1]
