"""Flux event intake over real HTTP: signed and unsigned, 400/401/413, unknown fields, clusters."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from notifiers.app import Bridge
from tests.conftest import EXAMPLES_DIR
from tests.notifiers.fakes import bridge_config, flux_event, make_bridge, metric, stored_events

KEYS = ["old-key-0123456789", "new-key-9876543210"]


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    (tmp_path / "keys").write_text("\n".join(KEYS) + "\n")
    doc = bridge_config(
        tmp_path / "state",
        {"console": {"type": "console"}},
        flux={"hmac_keys_file": str(tmp_path / "keys"), "cluster_header": "X-Cluster"},
        max_body_bytes=4096,
    )
    b = make_bridge(doc, console=io.StringIO())
    await b.start()
    yield b
    await b.stop()


def sign(body: bytes, key: str, algo: str = "sha256") -> str:
    return f"{algo}={hmac.new(key.encode(), body, getattr(hashlib, algo)).hexdigest()}"


def url(bridge: Bridge, path: str = "/flux") -> str:
    return f"http://127.0.0.1:{bridge.port}{path}"


@pytest.mark.parametrize("key", KEYS, ids=["old-key", "new-key-after-rotation"])
async def test_signed_event_is_stored_then_acknowledged(
    bridge: Bridge, client: aiohttp.ClientSession, key: str
) -> None:
    body = (EXAMPLES_DIR / "event-generic-webhook-as-delivered.json").read_bytes()
    async with client.post(
        url(bridge),
        data=body,
        headers={"X-Signature": sign(body, key), "Gotk-Component": "kustomize-controller"},
    ) as resp:
        assert resp.status == 202
        accepted = (await resp.json())["accepted"]
    events = stored_events(bridge.state_dir)
    assert [e["id"] for e in events] == accepted
    assert events[0]["cluster"] == "my-cluster"  # from metadata.cluster
    assert events[0]["commit"] == "802723078affd3eb2a3898630261ab3ca5d6dd40"


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=00", "sha256=" + "0" * 64, "md5=abc", "garbage", sign(b"other body", KEYS[0])],
    ids=["missing", "short", "wrong", "unknown-algo", "no-equals", "other-body"],
)
async def test_bad_signature_gets_401_and_nothing_is_stored(
    bridge: Bridge,
    client: aiohttp.ClientSession,
    signature: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(flux_event()).encode()
    headers = {"X-Signature": signature} if signature else {}
    async with client.post(url(bridge), data=body, headers=headers) as resp:
        assert resp.status == 401
    assert stored_events(bridge.state_dir) == []
    assert (
        metric(
            bridge,
            "fluxwatch_bridge_events_rejected_total",
            {"source": "flux", "reason": "bad_signature"},
        )
        == 1
    )
    assert not any(k in caplog.text for k in KEYS)


@pytest.mark.parametrize("algo", ["sha224", "sha384", "sha512"])
async def test_other_hmac_digests_are_accepted(
    bridge: Bridge, client: aiohttp.ClientSession, algo: str
) -> None:
    body = json.dumps(flux_event()).encode()
    async with client.post(
        url(bridge), data=body, headers={"X-Signature": sign(body, KEYS[1], algo)}
    ) as resp:
        assert resp.status == 202


BAD_BODIES = [
    ("malformed-json", b"{not json", "malformed_json"),
    ("not-utf8", b"\xff\xfe\x00", "malformed_json"),
    (
        "lone-surrogate-in-name",
        b'{"involvedObject": {"kind": "K", "name": "a\\ud800b"}}',
        "malformed_json",
    ),
    (
        "lone-upper-surrogate-in-metadata",
        b'{"involvedObject": {"kind": "K", "name": "x"}, "metadata": {"k": "\\uDC00"}}',
        "malformed_json",
    ),
    ("array", b"[]", "invalid_event"),
    ("no-involved-object", b'{"severity": "info"}', "invalid_event"),
    ("no-kind", b'{"involvedObject": {"name": "x"}}', "invalid_event"),
    (
        "metadata-not-object",
        b'{"involvedObject": {"kind": "K", "name": "x"}, "metadata": [1]}',
        "invalid_event",
    ),
    (
        "message-not-string",
        b'{"involvedObject": {"kind": "K", "name": "x"}, "message": 5}',
        "invalid_event",
    ),
]


@pytest.mark.parametrize(
    ("body", "reason"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
async def test_malformed_payload_gets_400_with_reason(
    bridge: Bridge, client: aiohttp.ClientSession, body: bytes, reason: str
) -> None:
    async with client.post(
        url(bridge), data=body, headers={"X-Signature": sign(body, KEYS[0])}
    ) as resp:
        assert resp.status == 400
        doc = await resp.json()
    assert doc["error"] == reason
    assert doc["message"]
    assert stored_events(bridge.state_dir) == []
    assert (
        metric(
            bridge, "fluxwatch_bridge_events_rejected_total", {"source": "flux", "reason": reason}
        )
        == 1
    )


async def test_body_over_the_limit_gets_413(bridge: Bridge, client: aiohttp.ClientSession) -> None:
    body = json.dumps(flux_event(message="x" * 5000)).encode()
    async with client.post(
        url(bridge), data=body, headers={"X-Signature": sign(body, KEYS[0])}
    ) as resp:
        assert resp.status == 413
    assert stored_events(bridge.state_dir) == []
    assert (
        metric(
            bridge,
            "fluxwatch_bridge_events_rejected_total",
            {"source": "flux", "reason": "too_large"},
        )
        == 1
    )


async def test_unknown_fields_are_kept(bridge: Bridge, client: aiohttp.ClientSession) -> None:
    doc = flux_event()
    doc["futureField"] = {"nested": [1, 2]}
    doc["involvedObject"]["extra"] = "kept"
    body = json.dumps(doc).encode()
    async with client.post(
        url(bridge), data=body, headers={"X-Signature": sign(body, KEYS[0])}
    ) as resp:
        assert resp.status == 202
    raw = stored_events(bridge.state_dir)[0]["raw"]
    assert raw["futureField"] == {"nested": [1, 2]}
    assert raw["involvedObject"]["extra"] == "kept"


CLUSTERS = [
    ("path-wins", "/flux/prod-eu-1", {"X-Cluster": "hdr"}, {"cluster": "meta"}, "prod-eu-1"),
    ("header-over-metadata", "/flux", {"X-Cluster": "hdr"}, {"cluster": "meta"}, "hdr"),
    ("metadata", "/flux", {}, {"cluster": "meta"}, "meta"),
    ("default", "/flux", {}, {}, "default"),
]


@pytest.mark.parametrize(
    ("path", "headers", "metadata", "expected"),
    [c[1:] for c in CLUSTERS],
    ids=[c[0] for c in CLUSTERS],
)
async def test_cluster_comes_from_path_header_or_metadata(
    bridge: Bridge,
    client: aiohttp.ClientSession,
    path: str,
    headers: dict[str, str],
    metadata: dict[str, str],
    expected: str,
) -> None:
    body = json.dumps(flux_event(metadata=metadata)).encode()
    async with client.post(
        url(bridge, path), data=body, headers={**headers, "X-Signature": sign(body, KEYS[0])}
    ) as resp:
        assert resp.status == 202
    assert stored_events(bridge.state_dir)[0]["cluster"] == expected


async def test_prefixed_metadata_from_the_provider_docs_is_understood(
    bridge: Bridge, client: aiohttp.ClientSession
) -> None:
    body = (EXAMPLES_DIR / "event-generic-webhook.json").read_bytes()
    async with client.post(
        url(bridge), data=body, headers={"X-Signature": sign(body, KEYS[0])}
    ) as resp:
        assert resp.status == 202
    event = stored_events(bridge.state_dir)[0]
    assert event["revision"] == "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
    assert event["commit"] == "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"
    assert event["status"] == "failing"


async def test_probes_and_metrics(bridge: Bridge, client: aiohttp.ClientSession) -> None:
    for path, text in (("/healthz", "ok"), ("/readyz", "ready")):
        async with client.get(url(bridge, path)) as resp:
            assert resp.status == 200
            assert text in await resp.text()
    async with client.get(url(bridge, "/metrics")) as resp:
        exposition = await resp.text()
    for name in (
        "fluxwatch_bridge_queue_depth",
        "fluxwatch_bridge_oldest_pending_age_seconds",
        "fluxwatch_bridge_dead_letters",
        "fluxwatch_bridge_circuit_open",
    ):
        assert f'{name}{{destination="console"}}' in exposition
