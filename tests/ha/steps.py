"""Events that carry their object's step number, posted so that consecutive steps of one object
reach different replicas, and the checks on what a destination received: which steps arrived,
in which order, and a trace of the requests for a failure message."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Iterable

from tests.ha.replicas import BridgeFleet, RecordingDestination, Replica
from tests.notifiers.fakes import flux_event


def step_event(obj: int, step: int) -> dict[str, object]:
    """Step ``step`` of object ``app-<obj>``: a new revision each time, so none is a duplicate."""
    return flux_event(
        f"app-{obj}",
        message=f"step {step}",
        revision=f"main@sha1:{obj:04x}{step:036x}",
    )


async def post_steps(fleet: BridgeFleet, replicas: list[Replica], objects: int, steps: int) -> None:
    """Every object's steps in order, each acknowledged before the next is posted; step s of
    object o goes to replica (o + s) mod N: round-robin over the replicas, and no two
    consecutive steps of an object on the same one."""

    async def post(obj: int, step: int) -> None:
        replica = replicas[(obj + step) % len(replicas)]
        status, _ = await fleet.post_flux(replica, step_event(obj, step))
        assert status == 202, (replica.replica_id, obj, step, status)

    for step in range(steps):
        await asyncio.gather(*(post(obj, step) for obj in range(objects)))


def posted(objects: int, steps: int) -> set[tuple[str, int]]:
    return {(f"app-{o}", s) for o in range(objects) for s in range(steps)}


def received(dest: RecordingDestination) -> set[tuple[str, int]]:
    """(object, step) of every event the destination answered 2xx for."""
    return {(str(e["name"]), int(str(e["message"]).split()[1])) for e in dest.delivered_events()}


def object_steps(dest: RecordingDestination) -> dict[str, list[int]]:
    """Each object's steps in the order the destination first accepted them."""
    steps: dict[str, list[int]] = defaultdict(list)
    for event in dest.delivered_events():
        steps[str(event["name"])].append(int(str(event["message"]).split()[1]))
    return dict(steps)


def order_broken(dest: RecordingDestination) -> str:
    """Empty when every object's steps arrived in order; else what broke, with a trace."""
    broken = {name: s for name, s in object_steps(dest).items() if s != sorted(s)}
    if not broken:
        return ""
    return f"{dest.name}: per-object order broken: {broken}\n" + trace(dest, broken)


def trace(dest: RecordingDestination, names: Iterable[str]) -> str:
    """Every request for these objects: when, from which replica, the answer, the key."""
    wanted = set(names)
    return "\n".join(
        f"  {a.received_at:.3f} {a.sender} {a.status or 'in flight'} {a.key} "
        + ",".join(f"{e['name']}:{e['message']}" for e in a.events)
        for a in dest.attempts
        if any(e["name"] in wanted for e in a.events)
    )


async def leases_settled(fleet: BridgeFleet, replicas: list[Replica]) -> bool:
    """Every replica sees the others, and the fleet's destinations are shared out fairly."""
    fair_share = math.ceil(len(fleet.destinations) / len(replicas))
    seen, shares = [], []
    for replica in replicas:
        metrics = await fleet.metrics(replica)
        seen.append(metrics.get("fluxwatch_bridge_outbox_replicas", 0))
        shares.append(metrics.get("fluxwatch_bridge_outbox_destinations_owned", 0))
    return (
        all(n == len(replicas) for n in seen)
        and sum(shares) == len(fleet.destinations)
        and max(shares) <= fair_share
    )
