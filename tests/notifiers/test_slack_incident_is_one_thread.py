"""A Slack incident is one parent, replies in its thread and the parent edited to the state.

Against the fake Slack Web API over real HTTP: failing -> recovered is exactly one parent, one
reply and one ``chat.update``; a deleted parent gets a new one; throttling is obeyed; a revoked
token dead-letters that destination only; incoming-webhook mode posts plain messages.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from notifiers.app import Bridge
from tests.notifiers.chat_fakes import FakeSlack, FakeTeams, Scripted
from tests.notifiers.fakes import bridge_config, eventually, make_bridge, query_outbox

pytestmark = pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL

TOKEN = "xoxb-4242-fluxwatch-test-token"
SHA = "802723078affd3eb2a3898630261ab3ca5d6dd40"


def transition(kind: str, status: str, reason: str, at: float, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": kind,
        "cluster": "prod-eu-1",
        "timestamp": at,
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "status": status,
        "reason": reason,
        "message": "health check failed <!channel> <@U123> & more",
        "revision": f"main@sha1:{SHA}",
    }
    doc.update(extra)
    return doc


def slack_destination(tmp_path: Path, fake: FakeSlack, **extra: Any) -> dict[str, Any]:
    token_file = tmp_path / "slack-token"
    token_file.write_text(TOKEN + "\n")
    dest: dict[str, Any] = {
        "type": "slack",
        "token_file": str(token_file),
        "channel": "#flux-prod",
        "api_url": fake.base_url,
        "timeout": "2s",
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms", "max_attempts": 5},
        "circuit_breaker": {"failures": 1000, "cooldown": "100ms"},
        "rate_limit": {"per_second": 50, "burst": 10},
    }
    dest.update(extra)
    return dest


def statuses(state_dir: Path) -> dict[str, int]:
    return dict(
        query_outbox(state_dir, "SELECT status, count(*) FROM notifications GROUP BY status")
    )


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(TOKEN).start()
    yield fake
    await fake.stop()


async def running(doc: dict[str, Any]) -> Bridge:
    bridge = make_bridge(doc)
    await bridge.start(serve=False)
    return bridge


async def test_failing_then_recovered_is_one_parent_one_reply_one_update(
    tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path / "state", {"chat": slack_destination(tmp_path, slack)})
    bridge = await running(doc)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await eventually(lambda: len(slack.parents()) == 1)
        await bridge.accept_transition(
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 754)
        )
        await eventually(lambda: statuses(tmp_path / "state").get("delivered") == 2)
    finally:
        await bridge.stop()
    (parent,) = slack.parents()
    (reply,) = slack.replies(parent)
    assert slack.count("chat.postMessage") == 2
    assert slack.count("chat.update") == 1
    assert parent.updates == 1
    assert parent.text.startswith("Recovered: prod-eu-1 / Kustomization apps/podinfo")
    assert "Recovered after 12m 34s" in parent.text
    assert reply.thread_ts == parent.ts
    # The Flux message's mention syntax arrives escaped: nobody is pinged.
    first_post = slack.calls[0][1]
    rendered = str(first_post["blocks"])
    assert "<!channel>" not in rendered
    assert "<@U123>" not in rendered
    assert "&lt;!channel&gt; &lt;@U123&gt; &amp; more" in rendered
    assert first_post["channel"] == "#flux-prod"  # by name; the update used the ID
    assert [m for m, _ in slack.calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    update = next(args for method, args in slack.calls if method == "chat.update")
    assert update["channel"] == "C0FLUX"


async def test_later_failures_reply_and_edit_then_a_new_incident_gets_a_new_parent(
    tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(
        tmp_path / "state",
        {"chat": slack_destination(tmp_path, slack)},
        {"destinations": ["chat"], "group_wait": "0s", "group_interval": "0s"},
    )
    bridge = await running(doc)
    t0 = time.time()
    try:
        steps = [
            transition("failing", "failing", "HealthCheckFailed", t0),
            transition("stalled", "stalled", "BuildFailed", t0 + 60),
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 120),
            transition("failing", "failing", "HealthCheckFailed", t0 + 600),
        ]
        for i, step in enumerate(steps, start=1):
            await bridge.accept_transition(step)
            await eventually(lambda i=i: statuses(tmp_path / "state").get("delivered") == i)
    finally:
        await bridge.stop()
    first, second = sorted(slack.parents(), key=lambda m: m.ts)
    assert len(slack.replies(first)) == 2
    assert first.updates == 2
    assert "Recovered after 2m" in first.text
    assert second.updates == 0
    assert slack.replies(second) == []
    assert second.text.startswith("Failing:")


async def test_deleted_parent_gets_a_new_one(tmp_path: Path, slack: FakeSlack) -> None:
    doc = bridge_config(tmp_path / "state", {"chat": slack_destination(tmp_path, slack)})
    bridge = await running(doc)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await eventually(lambda: len(slack.parents()) == 1)
        slack.messages.clear()  # someone deleted the parent
        await bridge.accept_transition(transition("stalled", "stalled", "BuildFailed", t0 + 5))
        await eventually(lambda: statuses(tmp_path / "state").get("delivered") == 2)
        await bridge.accept_transition(
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 9)
        )
        await eventually(lambda: statuses(tmp_path / "state").get("delivered") == 3)
    finally:
        await bridge.stop()
    (parent,) = slack.parents()  # the new one
    assert parent.text.startswith("Recovered:")
    assert len(slack.replies(parent)) == 1
    errors = [m for m, _ in slack.calls]
    assert errors == [
        "chat.postMessage",  # first parent
        "chat.update",  # message_not_found
        "chat.postMessage",  # new parent
        "chat.update",  # recovery edits the new parent
        "chat.postMessage",  # and replies under it
    ]


async def test_throttling_is_obeyed(tmp_path: Path, slack: FakeSlack) -> None:
    slack.script = [
        Scripted(
            "chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
        ),
        Scripted("chat.postMessage", 200, {"ok": False, "error": "internal_error"}),
    ]
    doc = bridge_config(tmp_path / "state", {"chat": slack_destination(tmp_path, slack)})
    bridge = await running(doc)
    try:
        await bridge.accept_transition(
            transition("failing", "failing", "HealthCheckFailed", time.time())
        )
        await eventually(lambda: len(slack.parents()) == 1)
    finally:
        await bridge.stop()
    posts = [i for i, (m, _) in enumerate(slack.calls) if m == "chat.postMessage"]
    assert len(posts) == 3


async def test_revoked_token_dead_letters_only_that_destination(
    tmp_path: Path, slack: FakeSlack
) -> None:
    teams = await FakeTeams().start()
    slack.revoked = True
    try:
        dests = {
            "chat": slack_destination(tmp_path, slack),
            "other": {"type": "teams", "url_env": "FW_TEST_TEAMS_URL"},
        }
        import os

        os.environ["FW_TEST_TEAMS_URL"] = teams.url
        try:
            doc = bridge_config(tmp_path / "state", dests)
            bridge = await running(doc)
        finally:
            del os.environ["FW_TEST_TEAMS_URL"]
        try:
            await bridge.accept_transition(
                transition("failing", "failing", "HealthCheckFailed", time.time())
            )
            await eventually(lambda: statuses(tmp_path / "state").get("dead") == 1)
            await eventually(lambda: len(teams.cards) == 1)
            # The outcome is counted once the dead letter's transaction has committed, a moment
            # after the row is visible to another reader.
            dead_counted = (
                'fluxwatch_bridge_deliveries_total{destination="chat",outcome="dead"} 1.0'
            )
            await eventually(
                lambda: dead_counted in generate_latest(bridge.metrics.registry).decode()
            )
            assert TOKEN not in generate_latest(bridge.metrics.registry).decode()
        finally:
            await bridge.stop()
        [(error,)] = query_outbox(
            tmp_path / "state", "SELECT last_error FROM notifications WHERE status = 'dead'"
        )
        assert "invalid_auth" in error
        assert TOKEN not in error
        assert slack.count("chat.postMessage") == 1  # permanent: not retried
        assert statuses(tmp_path / "state") == {"dead": 1, "delivered": 1}
    finally:
        await teams.stop()


async def test_incoming_webhook_mode_posts_without_threads(
    tmp_path: Path, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FW_TEST_SLACK_WEBHOOK", slack.webhook_url)
    dest = {
        "type": "slack",
        "webhook_url_env": "FW_TEST_SLACK_WEBHOOK",
        "retry": {"initial_backoff": "50ms", "max_attempts": 5},
    }
    doc = bridge_config(tmp_path / "state", {"chat": dest})
    bridge = await running(doc)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await bridge.accept_transition(
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 30)
        )
        await eventually(lambda: len(slack.webhook_posts) == 2)
    finally:
        await bridge.stop()
    assert slack.calls == []  # no Web API call at all
    assert slack.webhook_posts[0]["text"].startswith("Failing:")
    assert slack.webhook_posts[1]["text"].startswith("Recovered:")


async def test_parent_deleted_before_the_recovery(tmp_path: Path, slack: FakeSlack) -> None:
    doc = bridge_config(
        tmp_path / "state",
        {"chat": slack_destination(tmp_path, slack)},
        {"destinations": ["chat"], "group_wait": "0s", "group_interval": "0s"},
    )
    bridge = await running(doc)
    t0 = time.time()
    try:
        await bridge.accept_transition(transition("failing", "failing", "HealthCheckFailed", t0))
        await eventually(lambda: len(slack.parents()) == 1)
        slack.messages.clear()
        await bridge.accept_transition(
            transition("recovered", "ready", "ReconciliationSucceeded", t0 + 5)
        )
        await eventually(lambda: statuses(tmp_path / "state").get("delivered") == 2)
        await bridge.accept_transition(
            transition("failing", "failing", "HealthCheckFailed", t0 + 60)
        )
        await eventually(lambda: statuses(tmp_path / "state").get("delivered") == 3)
    finally:
        await bridge.stop()
    # the recovery is posted on its own; the anchor is closed, so the next failure is a new
    # parent without a doomed chat.update first
    assert [m for m, _ in slack.calls] == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
        "chat.postMessage",
    ]
    assert len(slack.parents()) == 2


async def test_default_pace_is_about_one_message_per_second(
    tmp_path: Path, slack: FakeSlack
) -> None:
    dest = slack_destination(tmp_path, slack)
    del dest["rate_limit"]  # Slack's default bucket: 1/s, burst 3
    doc = bridge_config(
        tmp_path / "state",
        {"chat": dest},
        {"destinations": ["chat"], "group_by": ["..."], "group_wait": "0s"},
    )
    bridge = await running(doc)
    t0 = time.time()
    try:
        for i in range(6):
            await bridge.accept_transition(
                transition("failing", "failing", "HealthCheckFailed", t0, name=f"app-{i}")
            )
        await eventually(lambda: len(slack.parents()) == 6, within=20)
    finally:
        await bridge.stop()
    times = sorted(at for channel, at in slack.post_log if channel == "C0FLUX")
    assert times[-1] - times[0] >= 2.5  # 3 at once, then one per second
    assert all(m == "chat.postMessage" for m, _ in slack.calls)  # no 429 was needed


async def test_a_fleet_rollout_is_one_thread_counting_clusters(
    tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path / "state", {"chat": slack_destination(tmp_path, slack)})
    bridge = await running(doc)
    t0 = time.time()
    try:
        for i, cluster in enumerate(["prod-eu-1", "prod-eu-2", "prod-us-1"], start=1):
            await bridge.accept_transition(
                transition(
                    "revision_applied",
                    "ready",
                    "ReconciliationSucceeded",
                    t0 + i,
                    cluster=cluster,
                    previous_status="ready",
                    latency_seconds=40.0 + i,
                )
            )
            await eventually(lambda i=i: statuses(tmp_path / "state").get("delivered") == i)
    finally:
        await bridge.stop()
    (parent,) = slack.parents()
    assert len(slack.replies(parent)) == 2
    assert parent.updates == 2
    assert "Rolled out on 3 clusters so far: prod-eu-1, prod-eu-2, prod-us-1" in parent.text
