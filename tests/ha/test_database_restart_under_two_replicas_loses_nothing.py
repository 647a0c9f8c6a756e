"""PostgreSQL restarts while two replicas take a steady stream of Flux events: both answer 503
with Retry-After (and fail /readyz) while it is down, reconnect by themselves, and every event
acknowledged by either replica is delivered, each under one idempotency key."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from tests.ha.replicas import BridgeFleet, Replica
from tests.notifiers.fakes import eventually, flux_event
from tests.postgres import PostgresServer

SENDERS = 4


async def test_database_restart_under_two_replicas_loses_nothing(
    fleet: BridgeFleet, postgres_server: PostgresServer
) -> None:
    (dest,) = await fleet.add_destinations(["ci"])
    fleet.write_config({"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"})
    replicas = await fleet.start(2)
    accepted: dict[str, list[str]] = defaultdict(list)  # replica -> names acknowledged
    refused: dict[str, list[str | None]] = defaultdict(list)  # replica -> Retry-After of 503s
    stop = asyncio.Event()

    async def sender(k: int) -> None:
        # A sender that is refused sends the same event again to the next replica, as a load
        # balancer spreading a retrying notification-controller would.
        i = 0
        turn = k
        while not stop.is_set():
            replica = replicas[turn % len(replicas)]
            turn += 1
            name = f"app-{k}-{i:05d}"
            status, retry_after = await fleet.post_flux(replica, flux_event(name))
            if status == 202:
                accepted[replica.replica_id].append(name)
                i += 1
            else:
                assert status == 503, (replica.replica_id, status)
                refused[replica.replica_id].append(retry_after)
                await asyncio.sleep(0.01)  # honours Retry-After, faster

    def total_accepted() -> int:
        return sum(len(v) for v in accepted.values())

    async def readyz(replica: Replica) -> int:
        return await fleet.status(replica, "/readyz")

    senders = [asyncio.create_task(sender(k)) for k in range(SENDERS)]
    try:
        await eventually(lambda: all(len(accepted[r.replica_id]) >= 25 for r in replicas))
        await asyncio.to_thread(postgres_server.stop)
        try:
            await eventually(
                lambda: all(len(refused[r.replica_id]) >= 3 for r in replicas), within=20
            )
            for replica in replicas:
                assert await readyz(replica) == 503
                assert await fleet.metric(replica, "fluxwatch_bridge_outbox_store_up") == 0
        finally:
            await asyncio.to_thread(postgres_server.start)
        before = {r.replica_id: len(accepted[r.replica_id]) for r in replicas}
        await eventually(
            lambda: all(len(accepted[r]) >= n + 25 for r, n in before.items()), within=30
        )
        await eventually(lambda: all_ready(fleet, replicas), within=10)
        for replica in replicas:
            metrics = await fleet.metrics(replica)
            assert metrics["fluxwatch_bridge_outbox_store_up"] == 1
            assert metrics["fluxwatch_bridge_outbox_store_reconnects_total"] >= 1
    finally:
        stop.set()
        await asyncio.gather(*senders)

    for replica in replicas:
        assert set(refused[replica.replica_id]) == {"1"}, replica.replica_id
    everything = sorted(name for names in accepted.values() for name in names)

    def all_delivered() -> bool:
        return {e["name"] for e in dest.delivered_events()} >= set(everything)

    await eventually(all_delivered, within=60, interval=0.1)
    # an event refused while its commit's answer was lost may be stored too, and is sent
    # then, but nothing is sent under two keys and nothing acknowledged is missing
    names = [e["name"] for e in dest.delivered_events()]
    assert len(names) == len(set(names)), "an event delivered under two idempotency keys"
    assert set(names) >= set(everything)
    assert {r.replica_id for r in fleet.live()} == {"r1", "r2"}
    await eventually(lambda: all_replicas_seen(fleet, replicas, 2), within=30, interval=0.1)


async def all_replicas_seen(fleet: BridgeFleet, replicas: list[Replica], count: int) -> bool:
    for replica in replicas:
        if await fleet.metric(replica, "fluxwatch_bridge_outbox_replicas") != count:
            return False
    return True


async def all_ready(fleet: BridgeFleet, replicas: list[Replica]) -> bool:
    return all([await fleet.ready(r) for r in replicas])
