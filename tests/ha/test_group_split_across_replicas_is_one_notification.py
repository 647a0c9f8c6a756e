"""A group's events arriving at different replicas within `group_wait` become exactly one
notification: the group window lives in the shared database, and whichever replica flushes it,
the replica holding the destination delivers it once."""

from __future__ import annotations

import time

from tests.ha.replicas import BridgeFleet
from tests.notifiers.fakes import eventually, flux_event

GROUP_WAIT = 3.0
NAMESPACES = ("payments", "billing")
PER_GROUP = 6


async def test_group_split_across_replicas_is_one_notification(fleet: BridgeFleet) -> None:
    (dest,) = await fleet.add_destinations(["team"])
    fleet.write_config(
        {
            "destinations": ["team"],
            "group_by": ["namespace", "status"],
            "group_wait": f"{GROUP_WAIT:g}s",
            "group_interval": "1h",
        }
    )
    replicas = await fleet.start(3)

    first_post = time.monotonic()
    for i in range(PER_GROUP):  # each group's events go round-robin to all three replicas
        for k, namespace in enumerate(NAMESPACES):
            replica = replicas[(i + k) % len(replicas)]
            event = flux_event(f"app-{i}", namespace=namespace)
            status, _ = await fleet.post_flux(replica, event)
            assert status == 202, (replica.replica_id, namespace, i, status)
    posting_took = time.monotonic() - first_post
    assert posting_took < GROUP_WAIT, "posting must fit in group_wait for this test to hold"

    await eventually(lambda: len(dest.delivered()) >= len(NAMESPACES), within=30)

    async def nothing_waits() -> bool:  # no event in a group, no notification to send
        for replica in replicas:
            depth = await fleet.metric(replica, "fluxwatch_bridge_queue_depth")
            if depth != 0:
                return False
        return True

    await eventually(nothing_waits, within=30, interval=0.1)
    assert len(dest.attempts) == len(NAMESPACES), [
        (a.sender, [e["namespace"] for e in a.events]) for a in dest.attempts
    ]
    by_namespace = {}
    for attempt in dest.delivered():
        namespaces = {e["namespace"] for e in attempt.events}
        assert len(namespaces) == 1, namespaces
        by_namespace[namespaces.pop()] = sorted(e["name"] for e in attempt.events)
        # a group is not flushed before its window closes, whichever replica flushes it
        assert attempt.received_at - first_post >= GROUP_WAIT - 0.2
    expected = sorted(f"app-{i}" for i in range(PER_GROUP))
    assert by_namespace == dict.fromkeys(NAMESPACES, expected)
