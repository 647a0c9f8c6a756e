"""Consecutive events of one object acknowledged by different replicas reach each destination
in the order they were acknowledged, whichever replica delivers the destination: the events
pile up while the destinations are down, then go out when they come back."""

from __future__ import annotations

import pytest

from tests.ha.replicas import BridgeFleet
from tests.ha.steps import leases_settled, order_broken, post_steps, posted, received
from tests.notifiers.fakes import eventually

OBJECTS = 8
STEPS = 5
DESTINATIONS = ("d0", "d1", "d2")


async def test_object_order_kept_when_its_events_reach_different_replicas(
    fleet: BridgeFleet,
) -> None:
    dests = await fleet.add_destinations(DESTINATIONS)
    for dest in dests:
        dest.down()
    fleet.write_config(
        {"destinations": list(DESTINATIONS), "group_by": ["..."], "group_wait": "0s"},
        max_in_flight=4,
    )
    replicas = await fleet.start(3)
    await eventually(lambda: leases_settled(fleet, replicas), within=30, interval=0.1)
    await post_steps(fleet, replicas, OBJECTS, STEPS)
    await eventually(lambda: all(len(d.attempts) >= 10 for d in dests), within=30)
    for dest in dests:
        dest.up()

    everything = posted(OBJECTS, STEPS)
    await eventually(lambda: all(received(d) == everything for d in dests), within=60, interval=0.1)
    for dest in dests:
        assert len(dest.delivered_events()) == len(everything), f"{dest.name}: under two keys"
        assert len({a.sender for a in dest.attempts}) == 1, f"{dest.name}: two senders"
        if order_broken(dest):
            pytest.fail(order_broken(dest))
