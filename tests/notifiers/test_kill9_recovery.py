"""kill -9 of a bridge subprocess mid-delivery with the destination down, then restart: every
acknowledged event is delivered, none twice to a destination that honours the idempotency key."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import REPO_ROOT
from tests.notifiers.fakes import (
    FakeDestination,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    flux_event,
)

pytestmark = pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL

N = 150


async def spawn(config: Path) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "--log-level",
        "warning",
        "bridge",
        "--config",
        str(config),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert b"listening on" in line, line
    return proc, int(line.strip().rsplit(b":", 1)[1])


async def kill9(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def test_kill9_mid_delivery_loses_and_doubles_nothing(tmp_path: Path) -> None:
    dest = await FakeDestination(default=Step(503)).start()  # down
    webhook = fast_webhook(dest.url, max_in_flight=4)
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(
        json.dumps(
            bridge_config(
                tmp_path / "state",
                {"ci": webhook},
                {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"},
                outbox={"synchronous": "normal"},
            )
        )
    )
    proc, port = await spawn(config)
    accepted: set[str] = set()
    try:
        async with aiohttp.ClientSession() as client:

            async def post(i: int) -> None:
                body = json.dumps(flux_event(f"app-{i:03d}")).encode()
                async with client.post(f"http://127.0.0.1:{port}/flux/c1", data=body) as resp:
                    assert resp.status == 202
                    accepted.add(f"app-{i:03d}")

            # Kill once while intake is still running: unacknowledged requests may be lost,
            # acknowledged ones must not.
            tasks = [asyncio.create_task(post(i)) for i in range(N)]
            await eventually(lambda: len(accepted) >= N // 2)
            await kill9(proc)
            await asyncio.gather(*tasks, return_exceptions=True)
            assert len(accepted) >= N // 2

            proc, port = await spawn(config)
            for i in range(N):  # the sender retries what was not acknowledged
                if f"app-{i:03d}" not in accepted:
                    await post(i)

        # The destination comes back slowly; kill in the middle of deliveries, twice.
        dest.default = Step(200, delay=0.02)
        for stage in (N // 4, N // 2):
            await eventually(lambda stage=stage: len(dest.applied) >= stage, within=30)
            await kill9(proc)
            proc, port = await spawn(config)

        await eventually(lambda: len({e["name"] for e in dest.applied_events()}) == N, within=30)
        names = [e["name"] for e in dest.applied_events()]
        assert sorted(names) == sorted(accepted)  # everything, and each under one key only
    finally:
        if proc.returncode is None:
            await kill9(proc)
        await dest.stop()
