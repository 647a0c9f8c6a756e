"""Two and three bridge replicas on one PostgreSQL; the replica delivering to a destination that
is down is `kill -9`ed in the middle of a delivery. The survivors take its destinations over
once its lease expires, and when the destinations come back:

- every event a replica acknowledged (202) reaches every destination;
- each object's events arrive in the order they were posted, although consecutive events of an
  object went to different replicas;
- no idempotency key is answered 2xx twice, except a key the killed replica had in flight when
  it died (the destination applied it, the replica never heard): the survivor that took the
  destination over sends it once more, under the same key, and only once;
- while every replica lives, each destination is delivered to by one replica only.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.ha.replicas import BridgeFleet, Replica
from tests.ha.steps import leases_settled, order_broken, post_steps, posted, received
from tests.notifiers.fakes import eventually

OBJECTS = 8
STEPS = 5
DESTINATIONS = ("d0", "d1", "d2")
ROUTE = {"destinations": list(DESTINATIONS), "group_by": ["..."], "group_wait": "0s"}


async def owned(fleet: BridgeFleet, replica: Replica) -> float:
    return await fleet.metric(replica, "fluxwatch_bridge_outbox_destinations_owned")


async def takeovers(fleet: BridgeFleet, replicas: list[Replica]) -> float:
    return sum(
        [await fleet.metric(r, "fluxwatch_bridge_outbox_lease_takeovers_total") for r in replicas]
    )


@pytest.mark.parametrize(
    ("replica_count", "outage"),
    [(2, "503"), (3, "connection refused")],
    ids=["2-replicas-503", "3-replicas-refused"],
)
async def test_replica_killed_mid_delivery_loses_and_doubles_nothing(
    fleet: BridgeFleet, replica_count: int, outage: str
) -> None:
    dests = await fleet.add_destinations(DESTINATIONS)
    for dest in dests:
        dest.down()
    fleet.write_config(ROUTE, max_in_flight=4)
    replicas = await fleet.start(replica_count)
    await eventually(lambda: leases_settled(fleet, replicas), within=30, interval=0.1)
    for replica in replicas:  # every replica renews and claims through the database
        assert await fleet.metric(replica, "fluxwatch_bridge_outbox_claim_seconds_count") > 0

    # Consecutive steps of an object go to different replicas.
    await post_steps(fleet, replicas, OBJECTS, STEPS)
    everything = posted(OBJECTS, STEPS)

    # Deliveries are under way (and failing) everywhere; one replica per destination.
    await eventually(lambda: all(len(d.attempts) >= 10 for d in dests), within=30)
    owner = {}
    for dest in dests:
        senders = {a.sender for a in dest.attempts}
        assert len(senders) == 1, f"{dest.name} delivered to by {sorted(senders)} at once"
        owner[dest.name] = senders.pop()
    victim = fleet.replicas[owner["d0"]]
    survivors = [r for r in replicas if r is not victim]
    victims_dests = [d for d in dests if owner[d.name] == victim.replica_id]
    assert await owned(fleet, victim) == len(victims_dests)

    # Mid-delivery: the victim's next requests hang; kill it while they are in flight.
    for dest in victims_dests:
        dest.hold_senders.add(victim.replica_id)
    await eventually(lambda: all(d.in_flight(victim.replica_id) for d in victims_dests), within=10)
    takeovers_before = await takeovers(fleet, survivors)
    await fleet.kill9(victim)
    in_flight_at_kill = {
        d.name: {a.key for a in d.in_flight(victim.replica_id)} for d in victims_dests
    }
    if outage == "connection refused":
        for dest in victims_dests:
            await dest.refuse()  # the victim's hanging requests end with a 503 here

    # The survivors take the victim's destinations over once its lease expires.
    await eventually(lambda: leases_settled(fleet, survivors), within=30, interval=0.1)
    assert await takeovers(fleet, survivors) - takeovers_before == len(victims_dests)
    if outage == "503":
        await eventually(
            lambda: all(
                any(a.sender != victim.replica_id for a in d.attempts) for d in victims_dests
            ),
            within=10,
        )

    # The destinations come back; the victim's hanging requests are answered 200 now.
    for dest in dests:
        if outage == "connection refused" and dest in victims_dests:
            await dest.accept()
        dest.up()

    await eventually(lambda: all(received(d) == everything for d in dests), within=60, interval=0.1)
    survivor_ids = {r.replica_id for r in survivors}
    for dest in dests:
        assert len(dest.delivered_events()) == len(everything), f"{dest.name}: under two keys"
        ok_per_key = Counter(a.key for a in dest.delivered())
        doubled = {key for key, n in ok_per_key.items() if n > 1}
        assert doubled <= in_flight_at_kill.get(dest.name, set()), dest.name
        assert max(ok_per_key.values()) <= 2, dest.name
        by_survivors = Counter(a.key for a in dest.delivered() if a.sender in survivor_ids)
        assert max(by_survivors.values(), default=0) <= 1, f"{dest.name}: a survivor resent"
        if dest in victims_dests and outage == "503":
            # the destination did apply what the victim had in flight: exactly those are sent
            # again, by the survivor that took the destination over
            assert doubled == in_flight_at_kill[dest.name], dest.name
        if outage == "connection refused":
            assert not doubled, dest.name  # the victim's hanging requests were answered 503
        late = [a for a in dest.delivered() if a.sender not in survivor_ids]
        assert {a.key for a in late} <= in_flight_at_kill.get(dest.name, set()), dest.name
    for dest in dests:
        if order_broken(dest):
            pytest.fail(order_broken(dest))
