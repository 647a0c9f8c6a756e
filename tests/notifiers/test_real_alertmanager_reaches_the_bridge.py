"""The real Alertmanager 0.25 binary delivers firing and resolved alerts to the bridge's intake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from notifiers.app import Bridge
from tests.alertmanager import RunningAlertmanager, alertmanager_process, wait_ready
from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    metric,
    stored_events,
)

TOKEN = "am-bridge-token-5f1c"
LABELS = {
    "alertname": "FluxResourceFailing",
    "cluster": "prod-eu",
    "namespace": "apps",
    "kind": "Kustomization",
    "name": "web",
    "severity": "critical",
}
SUMMARY = "Kustomization apps/web is failing on prod-eu"
# whole seconds: the bridge's occurred_at must equal it exactly after Alertmanager re-encodes it
STARTS_AT = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
async def bridge(tmp_path: Path, destination: FakeDestination) -> AsyncIterator[Bridge]:
    token_file = tmp_path / "bridge-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    doc = bridge_config(
        tmp_path / "state",
        {"hook": fast_webhook(destination.url)},
        alertmanager={"bearer_token_file": str(token_file)},
    )
    b = make_bridge(doc)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, bridge: Bridge) -> Iterator[RunningAlertmanager]:
    """A real Alertmanager whose only receiver is the bridge, stopped (SIGTERM, then SIGKILL)."""
    credentials = tmp_path / "am-credentials"
    credentials.write_text(TOKEN, encoding="utf-8")
    config = {
        "route": {
            "receiver": "fluxwatch",
            "group_by": ["alertname", "cluster"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "fluxwatch",
                "webhook_configs": [
                    {
                        "url": f"http://127.0.0.1:{bridge.port}/alertmanager",
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(credentials),
                            }
                        },
                    }
                ],
            }
        ],
    }
    with alertmanager_process(tmp_path, config) as am:
        yield am


async def post_alert(client: aiohttp.ClientSession, base: str, ends_at: datetime | None) -> None:
    alert: dict[str, Any] = {
        "labels": LABELS,
        "annotations": {"summary": SUMMARY},
        "startsAt": iso(STARTS_AT),
        "generatorURL": "http://prometheus.example/graph",
    }
    if ends_at is not None:
        alert["endsAt"] = iso(ends_at)
    async with client.post(f"{base}/api/v2/alerts", json=[alert]) as resp:
        assert resp.status == 200, await resp.text()


def delivered(destination: FakeDestination, status: str) -> list[dict[str, Any]]:
    return [e for e in destination.applied_events() if e["status"] == status]


async def arrives(destination: FakeDestination, status: str, am: RunningAlertmanager) -> None:
    """Wait for one delivered event with ``status``; on timeout show why Alertmanager failed."""
    try:
        await eventually(lambda: len(delivered(destination, status)) == 1, within=8)
    except AssertionError:
        errors = am.problems()
        raise AssertionError(f"no {status} notification; Alertmanager logged: {errors}") from None


async def test_firing_then_resolved_alert_reaches_the_destination(
    bridge: Bridge,
    alertmanager: RunningAlertmanager,
    destination: FakeDestination,
    client: aiohttp.ClientSession,
) -> None:
    am = alertmanager.url
    await wait_ready(client, am)
    await post_alert(client, am, ends_at=None)

    async with client.get(f"{am}/api/v2/alerts") as resp:
        stored = await resp.json()
    assert [a["labels"] for a in stored] == [LABELS]
    fingerprint = stored[0]["fingerprint"]

    await arrives(destination, "firing", alertmanager)
    (firing,) = delivered(destination, "firing")
    expected = {
        "source": "alertmanager",
        "type": "alert",
        "cluster": "prod-eu",
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "web",
        "severity": "critical",
        "reason": "FluxResourceFailing",
        "message": SUMMARY,
    }
    assert {k: firing[k] for k in expected} == expected
    assert firing["status"] == "firing"
    assert firing["labels"] == LABELS
    assert firing["metadata"] == {"summary": SUMMARY}  # annotations travel as metadata
    assert firing["occurred_at"] == STARTS_AT.timestamp()
    # the bridge counted Alertmanager's request under its own source
    assert metric(bridge, "fluxwatch_bridge_events_received_total", {"source": "alertmanager"}) == 1

    # endsAt in the past resolves the alert; Alertmanager sends it at the next group_interval
    ends_at = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0)
    await post_alert(client, am, ends_at=ends_at)
    await arrives(destination, "resolved", alertmanager)
    (resolved,) = delivered(destination, "resolved")
    assert {k: resolved[k] for k in expected} == expected
    assert resolved["labels"] == LABELS
    assert resolved["occurred_at"] == ends_at.timestamp()
    # Alertmanager's fingerprint becomes the event uid, the key dedup pairs firing/resolved by
    stored = stored_events(bridge.state_dir)
    assert [(e["status"], e["uid"]) for e in stored] == [
        ("firing", fingerprint),
        ("resolved", fingerprint),
    ]
    assert {e["raw"]["receiver"] for e in stored} == {"fluxwatch"}
    # every webhook attempt succeeded first time (a 401 or 5xx would be logged as an error)
    assert "level=error" not in alertmanager.log.read_text(encoding="utf-8")
    assert len(delivered(destination, "firing")) == 1  # repeats were deduplicated, not resent
    assert metric(bridge, "fluxwatch_bridge_events_received_total", {"source": "alertmanager"}) == 2
    assert (
        metric(
            bridge,
            "fluxwatch_bridge_events_rejected_total",
            {"source": "alertmanager", "reason": "bad_token"},
        )
        == 0
    )


WRONG_AUTH = [
    ("wrong-token", {"Authorization": "Bearer not-the-token"}),
    ("missing", {}),
]


@pytest.mark.parametrize("headers", [w[1] for w in WRONG_AUTH], ids=[w[0] for w in WRONG_AUTH])
async def test_wrong_token_is_rejected_with_401(
    bridge: Bridge,
    destination: FakeDestination,
    client: aiohttp.ClientSession,
    headers: dict[str, str],
) -> None:
    body = {"version": "4", "status": "firing", "alerts": [{"labels": LABELS}]}
    async with client.post(
        f"http://127.0.0.1:{bridge.port}/alertmanager", json=body, headers=headers
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "bad_token"
    labels = {"source": "alertmanager", "reason": "bad_token"}
    assert metric(bridge, "fluxwatch_bridge_events_rejected_total", labels) == 1
    assert metric(bridge, "fluxwatch_bridge_events_received_total", {"source": "alertmanager"}) == 0
    # the same count is what a Prometheus scrape of /metrics sees
    async with client.get(f"http://127.0.0.1:{bridge.port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert scraped[("fluxwatch_bridge_events_rejected_total", tuple(sorted(labels.items())))] == 1
    assert destination.requests == []
