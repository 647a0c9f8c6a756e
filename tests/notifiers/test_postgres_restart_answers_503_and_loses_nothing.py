"""The outbox's PostgreSQL restarts under load: while it is down the bridge answers 503 with
Retry-After and /readyz fails, it reconnects by itself, and every acknowledged event is
delivered once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from tests.notifiers import fakes
from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    eventually,
    fast_webhook,
    flux_event,
    make_bridge,
    metric,
)
from tests.postgres import PostgresServer


async def test_database_restart_under_load_loses_nothing_acknowledged(
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_dsn: str,
    destination: FakeDestination,
    client: aiohttp.ClientSession,
) -> None:
    fakes.OUTBOX_POSTGRES_DSN = postgres_dsn
    try:
        doc = bridge_config(
            tmp_path / "state",
            {"ci": fast_webhook(destination.url)},
            {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"},
        )
    finally:
        fakes.OUTBOX_POSTGRES_DSN = None
    bridge = make_bridge(doc)
    await bridge.start()
    base = f"http://127.0.0.1:{bridge.port}"
    accepted: list[str] = []
    refused: list[str | None] = []  # Retry-After of every 503
    stop = asyncio.Event()

    async def sender(k: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"app-{k}-{i:05d}"
            body = json.dumps(flux_event(name)).encode()
            async with client.post(f"{base}/flux/c1", data=body) as resp:
                if resp.status == 202:
                    accepted.append(name)
                    i += 1
                else:
                    assert resp.status == 503, await resp.text()
                    refused.append(resp.headers.get("Retry-After"))
                    await asyncio.sleep(0.01)  # what a sender honouring Retry-After does, faster

    async def ready() -> int:
        async with client.get(f"{base}/readyz") as resp:
            return resp.status

    senders = [asyncio.create_task(sender(k)) for k in range(4)]
    try:
        await eventually(lambda: len(accepted) >= 50)
        await asyncio.to_thread(postgres_server.stop)
        try:
            await eventually(lambda: len(refused) >= 5, within=20)
            assert await ready() == 503
            assert metric(bridge, "fluxwatch_bridge_outbox_store_up") == 0
        finally:
            await asyncio.to_thread(postgres_server.start)
        before = len(accepted)
        await eventually(lambda: len(accepted) >= before + 50, within=30)
        assert await ready() == 200
        assert metric(bridge, "fluxwatch_bridge_outbox_store_up") == 1
        assert metric(bridge, "fluxwatch_bridge_outbox_store_reconnects_total") >= 1
    finally:
        stop.set()
        await asyncio.gather(*senders, return_exceptions=True)
    try:
        assert set(refused) == {"1"}
        await eventually(
            lambda: len({e["name"] for e in destination.applied_events()}) == len(accepted),
            within=30,
        )
        names = [e["name"] for e in destination.applied_events()]
        assert sorted(names) == sorted(accepted)  # every acknowledged event, each once
    finally:
        await bridge.stop()
