"""Every intake path reads the whole body however it is split on the wire, and refuses 413 past
the limit, chunked or not.

A notification-controller's larger events reach the bridge in several TCP segments, tens of
milliseconds apart across a real network, and it does not retry a 4xx: a body checked half-read
is an event lost. The requests here go over raw sockets, written in pieces with pauses.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifiers.app import Bridge
from tests.notifiers.fakes import bridge_config, flux_event, make_bridge, metric, stored_events
from tests.notifiers.rawhttp import post_in_pieces

HMAC_KEY = "split-body-key-0123456789"
TOKEN = "am-token-split-bodies"
EXPORTER_TOKEN = "exporter-token-split-bodies"
LIMIT = 128 * 1024


@dataclass(frozen=True)
class Auth:
    name: str
    signed: bool


AUTHS = [Auth("unsigned", False), Auth("signed", True)]


@pytest.fixture(params=AUTHS, ids=[a.name for a in AUTHS])
async def bridge(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Bridge]:
    auth: Auth = request.param
    # Exporters always need their token: the bridge has no unsigned transitions endpoint.
    (tmp_path / "exporter-token").write_text(EXPORTER_TOKEN + "\n")
    extra: dict[str, Any] = {
        "max_body_bytes": LIMIT,
        "exporters": {"token_file": str(tmp_path / "exporter-token")},
    }
    if auth.signed:
        (tmp_path / "keys").write_text(HMAC_KEY + "\n")
        monkeypatch.setenv("SPLIT_AM_TOKEN", TOKEN)
        extra["flux"] = {"hmac_keys_file": str(tmp_path / "keys")}
        extra["alertmanager"] = {"bearer_token_env": "SPLIT_AM_TOKEN"}
    b = make_bridge(
        bridge_config(tmp_path / "state", {"console": {"type": "console"}}, **extra),
        console=io.StringIO(),
    )
    await b.start()
    yield b
    await b.stop()


def signed(bridge: Bridge) -> bool:
    return bool(bridge.config.flux.hmac_keys)


def flux_body(size: int) -> bytes:
    doc = flux_event("podinfo", message="")
    pad = size - len(json.dumps(doc).encode())
    doc["message"] = "x" * max(0, pad)
    return json.dumps(doc).encode()


def alertmanager_body(size: int) -> bytes:
    doc: dict[str, Any] = {
        "version": "4",
        "status": "firing",
        "receiver": "fluxwatch",
        "groupLabels": {},
        "commonLabels": {"alertname": "FluxReconciliationFailing"},
        "alerts": [
            {
                "status": "firing",
                "labels": {"cluster": "prod-1", "kind": "Kustomization", "name": "podinfo"},
                "annotations": {"summary": "podinfo failing", "description": ""},
                "startsAt": "2026-11-30T10:00:00Z",
                "fingerprint": "f00d",
            }
        ],
    }
    pad = size - len(json.dumps(doc).encode())
    doc["alerts"][0]["annotations"]["description"] = "y" * max(0, pad)
    return json.dumps(doc).encode()


def transitions_body(size: int) -> bytes:
    transition: dict[str, Any] = {
        "type": "failing",
        "cluster": "prod-1",
        "timestamp": 1_796_000_000.0,
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "uid": "u1",
        "status": "failing",
        "previous_status": "ready",
        "reason": "HealthCheckFailed",
        "message": "",
        "revision": "main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
        "root_cause": None,
    }
    doc = {"shard": 0, "total_shards": 1, "transitions": [transition]}
    pad = size - len(json.dumps(doc).encode())
    transition["message"] = "z" * max(0, pad)
    return json.dumps(doc).encode()


def exporter_headers(bridge: Bridge, body: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {EXPORTER_TOKEN}"}


def flux_headers(bridge: Bridge, body: bytes) -> dict[str, str]:
    if not signed(bridge):
        return {}
    digest = hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature": f"sha256={digest}"}


def alertmanager_headers(bridge: Bridge, body: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"} if signed(bridge) else {}


@dataclass(frozen=True)
class Path_:
    name: str
    path: str
    source: str
    body: Callable[[int], bytes]
    headers: Callable[[Bridge, bytes], dict[str, str]]
    limit: int = LIMIT


PATHS = [
    Path_("flux", "/flux", "flux", flux_body, flux_headers),
    Path_("flux-cluster", "/flux/prod-eu-1", "flux", flux_body, flux_headers),
    Path_("alertmanager", "/alertmanager", "alertmanager", alertmanager_body, alertmanager_headers),
    # a batch of transitions may be 16 times an event's limit
    Path_(
        "transitions",
        "/exporter/v1/transitions",
        "transition",
        transitions_body,
        exporter_headers,
        LIMIT * 16,
    ),
]
# (body size, pieces, pause between pieces): the sizes the defect was seen with, and a 100 KB
# body written back to back in 4 KiB writes.
SHAPES = [(585, 2, 0.03), (3500, 3, 0.05), (20_000, 4, 0.04), (100_000, 25, 0.0)]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("size", "pieces", "pause"), SHAPES, ids=[str(s[0]) for s in SHAPES])
@pytest.mark.parametrize("route", PATHS, ids=[p.name for p in PATHS])
async def test_body_in_pieces_is_accepted_whole(
    bridge: Bridge, route: Path_, size: int, pieces: int, pause: float, chunked: bool
) -> None:
    assert bridge.port is not None
    body = route.body(size)
    resp = await post_in_pieces(
        bridge.port,
        route.path,
        body,
        headers=route.headers(bridge, body),
        pieces=pieces,
        pause=pause,
        chunked=chunked,
    )
    assert resp.status == 202, resp.body
    stored = stored_events(bridge.state_dir)
    assert [e["id"] for e in stored] == resp.json["accepted"]
    sent = json.loads(body)
    if route.source == "flux":
        assert stored[0]["raw"] == sent  # every byte arrived, in order
    elif route.source == "alertmanager":
        assert stored[0]["raw"]["alert"] == sent["alerts"][0]
    else:
        assert stored[0]["raw"] == sent["transitions"][0]
    assert (
        metric(
            bridge,
            "fluxwatch_bridge_events_rejected_total",
            {"source": route.source, "reason": "too_large"},
        )
        == 0
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("route", PATHS, ids=[p.name for p in PATHS])
async def test_body_over_the_limit_is_refused_with_413(
    bridge: Bridge, route: Path_, chunked: bool
) -> None:
    assert bridge.port is not None
    body = route.body(route.limit + 10_000)
    resp = await post_in_pieces(
        bridge.port,
        route.path,
        body,
        headers=route.headers(bridge, body),
        pieces=4,
        pause=0.03,
        chunked=chunked,
    )
    assert resp.status == 413
    assert resp.json["error"] == "too_large"
    assert stored_events(bridge.state_dir) == []
    labels = {"source": route.source, "reason": "too_large"}
    assert metric(bridge, "fluxwatch_bridge_events_rejected_total", labels) == 1
