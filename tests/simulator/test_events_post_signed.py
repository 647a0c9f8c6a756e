"""Reconcile outcomes are POSTed as notification-controller events, signed like generic-hmac."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from simulator.scenario import preset
from simulator.server import SimulatorServer
from tests.simulator.conftest import eventually

KEY = b"s3cret-hmac-key"
START = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


class Receiver:
    """A local HTTP server standing in for the bridge: records path, headers and raw body."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.headers), await request.read()))
        return web.Response(status=202)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    sink = Receiver()
    app = web.Application()
    app.router.add_post("/events/{cluster}", sink.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield sink, f"http://127.0.0.1:{port}/events/{{cluster}}"
    await runner.cleanup()


async def test_events_carry_a_verifiable_signature(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    sink, url = receiver
    async with SimulatorServer(
        preset("small", seed=2), state_dir=tmp_path, events_url=url, events_hmac_key=KEY
    ) as sim:
        sim.cluster("c1").fail("Kustomization", "flux-system", "infra", "build")
        sim.new_commit("GitRepository", "flux-system", "flux-system", clusters=["c2"])
        await sim.advance(400)
        await eventually(lambda: any(b'"BuildFailed"' in body for _, _, body in sink.received))
        await eventually(lambda: any(b'"NewArtifact"' in body for _, _, body in sink.received))
    events: list[dict[str, Any]] = []
    for path, headers, body in sink.received:
        expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
        assert headers["X-Signature"] == expected
        assert headers["Content-Type"] == "application/json"
        event = json.loads(body)
        assert path == f"/events/{event['metadata']['cluster']}"
        assert headers["Gotk-Component"] == event["reportingController"]
        assert list(event) == [
            "involvedObject",
            "severity",
            "timestamp",
            "message",
            "reason",
            "metadata",
            "reportingController",
            "reportingInstance",
        ]
        assert all("/" not in key for key in event["metadata"])
        events.append(event)
    failed = next(e for e in events if e["reason"] == "BuildFailed")
    assert failed["severity"] == "error"
    assert failed["involvedObject"]["kind"] == "Kustomization"
    assert failed["metadata"]["revision"].startswith("main@sha1:")
    stored = next(e for e in events if e["reason"] == "NewArtifact")
    assert stored["metadata"]["cluster"] == "c2"
    assert stored["reportingController"] == "source-controller"


async def test_unreachable_receiver_is_counted_not_fatal(tmp_path: Path) -> None:
    # A port nothing listens on: bind one, note it, close it.
    probe = web.AppRunner(web.Application())
    await probe.setup()
    site = web.TCPSite(probe, "127.0.0.1", 0)
    await site.start()
    port = probe.addresses[0][1]
    await probe.cleanup()
    async with SimulatorServer(
        preset("small", seed=2), state_dir=tmp_path, events_url=f"http://127.0.0.1:{port}/x"
    ) as sim:
        sim.cluster("c1").fail("Kustomization", "flux-system", "infra", "build")
        await sim.advance(300)
        await eventually(lambda: sim.stats()["events_failed"] > 0)
        assert sim.stats()["events_sent"] == 0
        await sim.advance(300)  # the engine carries on
        assert sim.stats()["status_changes"] > 0


async def test_event_stream_is_reproducible(tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    """The events of a scripted half hour, byte for byte (a fixture for event consumers too).

    Regenerate with ``FLUXWATCH_UPDATE_GOLDEN=1``."""
    sink, url = receiver
    async with SimulatorServer(
        preset("small", seed=1), state_dir=tmp_path, events_url=url, start_time=START
    ) as sim:
        c1 = sim.cluster("c1")
        c1.fail("HelmRelease", "search", "frontend", "upgrade")
        c1.fail("Kustomization", "flux-system", "infra", "health")
        sim.new_commit("GitRepository", "payments", "podinfo", clusters=["c1"])
        await sim.advance(1800)
        assert sim.sink is not None
        await asyncio.wait_for(sim.sink.drain(), 10)
    text = "".join(body.decode() + "\n" for _, _, body in sink.received)
    golden = Path(__file__).parent / "golden" / "events-small-seed1-30min.jsonl"
    if os.environ.get("FLUXWATCH_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text()
    reasons = {json.loads(line)["reason"] for line in text.splitlines()}
    assert {"UpgradeFailed", "HealthCheckFailed", "NewArtifact"} <= reasons
