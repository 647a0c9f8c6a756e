"""Alertmanager webhooks (v4, tolerant) with bearer/basic auth, and in-process exporter
transitions."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter.transitions import RootCause, Transition
from notifiers.app import Bridge
from notifiers.intake import IntakeError
from tests.notifiers.fakes import bridge_config, make_bridge, metric, stored_events

TOKEN = "am-token-abcdef"


@pytest.fixture
async def bridge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bridge]:
    monkeypatch.setenv("TEST_AM_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_AM_PASSWORD", "pw")
    doc = bridge_config(
        tmp_path / "state",
        {"console": {"type": "console"}},
        alertmanager={
            "bearer_token_env": "TEST_AM_TOKEN",
            "basic_auth": {"username": "am", "password_env": "TEST_AM_PASSWORD"},
        },
    )
    b = make_bridge(doc, console=io.StringIO())
    await b.start()
    yield b
    await b.stop()


def payload(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="FluxKustomizationFailing"}',
        "truncatedAlerts": 2,
        "status": "firing",
        "receiver": "fluxwatch",
        "groupLabels": {"alertname": "FluxKustomizationFailing"},
        "commonLabels": {"alertname": "FluxKustomizationFailing", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "notification_reason": "new_alerts",
        "routeLabels": {"team": "a"},
        "somethingNew": True,
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "cluster": "prod-1",
                    "namespace": "apps",
                    "name": "podinfo",
                    "kind": "Kustomization",
                },
                "annotations": {"summary": "podinfo failing"},
                "startsAt": "2026-11-30T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom",
                "fingerprint": "aaa",
            },
            {
                "status": "resolved",
                "labels": {"cluster": "prod-2", "namespace": "apps", "name": "podinfo"},
                "annotations": {"description": "fixed"},
                "startsAt": "2026-11-30T09:00:00Z",
                "endsAt": "2026-11-30T10:00:00Z",
                "fingerprint": "bbb",
            },
        ],
    }
    doc.update(extra)
    return doc


AUTH = [
    ("bearer", f"Bearer {TOKEN}", 202),
    ("basic", "Basic " + base64.b64encode(b"am:pw").decode(), 202),
    ("wrong-bearer", "Bearer nope", 401),
    ("wrong-basic", "Basic " + base64.b64encode(b"am:nope").decode(), 401),
    ("bad-base64", "Basic ###", 401),
    ("missing", None, 401),
]


@pytest.mark.parametrize(("header", "status"), [a[1:] for a in AUTH], ids=[a[0] for a in AUTH])
async def test_alertmanager_auth(
    bridge: Bridge, client: aiohttp.ClientSession, header: str | None, status: int
) -> None:
    headers = {"Authorization": header} if header else {}
    async with client.post(
        f"http://127.0.0.1:{bridge.port}/alertmanager", json=payload(), headers=headers
    ) as resp:
        assert resp.status == status
    assert len(stored_events(bridge.state_dir)) == (2 if status == 202 else 0)
    if status == 401:
        assert (
            metric(
                bridge,
                "fluxwatch_bridge_events_rejected_total",
                {"source": "alertmanager", "reason": "bad_token"},
            )
            == 1
        )


async def test_mixed_firing_and_resolved_become_one_event_each(
    bridge: Bridge, client: aiohttp.ClientSession
) -> None:
    async with client.post(
        f"http://127.0.0.1:{bridge.port}/alertmanager",
        json=payload(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        assert resp.status == 202
    events = stored_events(bridge.state_dir)
    assert [(e["cluster"], e["status"], e["severity"]) for e in events] == [
        ("prod-1", "firing", "critical"),
        ("prod-2", "resolved", "critical"),
    ]
    assert events[0]["kind"] == "Kustomization"
    assert events[1]["kind"] == "Alert"
    assert events[0]["raw"]["somethingNew"] is True
    assert events[0]["raw"]["truncatedAlerts"] == 2
    assert events[1]["message"] == "fixed"


@pytest.mark.parametrize(
    "doc",
    [
        {"alerts": "nope"},
        {"alerts": [1]},
        {"alerts": [{"status": "weird"}]},
        {"alerts": [{"labels": []}]},
    ],
    ids=["alerts-not-list", "alert-not-object", "bad-status", "labels-not-object"],
)
async def test_bad_alertmanager_payload_gets_400(
    bridge: Bridge, client: aiohttp.ClientSession, doc: dict[str, Any]
) -> None:
    async with client.post(
        f"http://127.0.0.1:{bridge.port}/alertmanager",
        data=json.dumps(doc),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        assert resp.status == 400
    assert stored_events(bridge.state_dir) == []


async def test_exporter_transitions_are_accepted_in_process(bridge: Bridge) -> None:
    transition = Transition(
        type="failing",
        cluster="prod-1",
        timestamp=1_800_000_000.0,
        kind="Kustomization",
        namespace="apps",
        name="podinfo",
        uid="u1",
        status="failing",
        previous_status="ready",
        reason="DependencyNotReady",
        message="dependency 'flux-system/repo' is not ready",
        revision="main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
        tenant="team-a",
        labels={"app": "podinfo"},
        annotations={"fluxwatch.io/owner": "team-a"},
        root_cause=RootCause("GitRepository", "flux-system", "repo", "GitOperationFailed"),
    )
    event_id = await bridge.accept_transition(transition.as_dict())
    [stored] = stored_events(bridge.state_dir)
    assert stored["id"] == event_id
    assert stored["root_cause"]["name"] == "repo"
    assert stored["annotations"] == {"fluxwatch.io/owner": "team-a"}
    assert stored["source"] == "transition"
    assert stored["severity"] == "error"


async def test_malformed_transition_raises_and_is_counted(bridge: Bridge) -> None:
    with pytest.raises(IntakeError):
        await bridge.accept_transition({"type": "exploded", "cluster": "c"})
    assert (
        metric(
            bridge,
            "fluxwatch_bridge_events_rejected_total",
            {"source": "transition", "reason": "invalid_event"},
        )
        == 1
    )
    assert stored_events(bridge.state_dir) == []
