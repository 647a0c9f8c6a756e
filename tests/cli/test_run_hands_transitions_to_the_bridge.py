"""`fluxwatch run`: an object failing in a watched cluster reaches a pipeline as a signed webhook.

The exporter and the bridge run in one subprocess, wired only through ``fluxwatch run``; the
cluster is the simulator, the pipeline a local receiver verifying Standard Webhooks signatures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession, web
from standardwebhooks import Webhook

from simulator.scenario import preset
from simulator.server import SimulatorServer

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DEADLINE_SECONDS = 45.0


class Pipeline:
    """A CI pipeline's webhook endpoint: keeps what it received, verified."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = Webhook(WHSEC).verify(body, dict(request.headers))
        self.received.append(payload)
        return web.Response(status=204)


@pytest.fixture
async def pipeline() -> AsyncIterator[Pipeline]:
    receiver = Pipeline()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    yield receiver
    await runner.cleanup()


async def _wait_for_line(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    seen: list[str] = []
    async with asyncio.timeout(DEADLINE_SECONDS):
        while line := (await stream.readline()).decode():
            seen.append(line)
            if match := re.search(pattern, line):
                return match
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


async def test_failing_source_reaches_the_pipeline_signed(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    async with SimulatorServer(preset("small"), state_dir=tmp_path / "sim") as sim:
        config = {
            "exporter": {
                "kubeconfig": str(sim.kubeconfig_path),
                "contexts": ["c1"],
                "listen": "127.0.0.1:0",
            },
            "bridge": {
                "listen": "127.0.0.1:0",
                "state_dir": str(tmp_path / "outbox"),
                "destinations": {
                    "pipeline": {
                        "type": "webhook",
                        "url": f"http://127.0.0.1:{pipeline.port}/hook",
                        "secret_env": "TEST_PIPELINE_WHSEC",
                    }
                },
                "route": {
                    "routes": [
                        {
                            "matchers": ["source=transition", "status=failing"],
                            "destinations": ["pipeline"],
                            "group_by": ["..."],
                            "group_wait": "0s",
                        }
                    ]
                },
            },
        }
        config_path = tmp_path / "fluxwatch.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fluxwatch",
            "run",
            "--config",
            str(config_path),
            stderr=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "TEST_PIPELINE_WHSEC": WHSEC},
        )
        try:
            assert process.stdout is not None
            match = await _wait_for_line(process.stdout, r"^exporter: (http://\S+)/metrics")
            exporter_url = match.group(1)
            async with ClientSession() as session:
                async with asyncio.timeout(DEADLINE_SECONDS):
                    while True:
                        async with session.get(f"{exporter_url}/readyz") as response:
                            if response.status == 200:
                                break
                        await asyncio.sleep(0.1)

                repo = sim.cluster("c1").objects("GitRepository")[0]
                namespace, name = repo["metadata"]["namespace"], repo["metadata"]["name"]
                sim.cluster("c1").fail("GitRepository", namespace, name, "fetch")
                deadline = time.monotonic() + DEADLINE_SECONDS
                while not pipeline.received and time.monotonic() < deadline:
                    await sim.advance(30)
                    await asyncio.sleep(0.1)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await asyncio.wait_for(process.wait(), DEADLINE_SECONDS)
            if process.stdout is not None:
                await process.stdout.read()

    assert process.returncode == 0
    assert pipeline.received, "no notification reached the pipeline"
    data = pipeline.received[0]["data"]
    assert pipeline.received[0]["type"] == "io.fluxwatch.failing.failing"
    assert (data["cluster"], data["kind"], data["namespace"], data["name"]) == (
        "c1",
        "GitRepository",
        namespace,
        name,
    )
    assert data["status"] == "failing"
    assert data["reason"] == "GitOperationFailed"
