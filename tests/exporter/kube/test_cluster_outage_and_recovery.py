"""A cluster outage turns its reachability to 0 (API errors counted), and recovery back to 1."""

from __future__ import annotations

import logging

import pytest

from catalogue import exporter as catalogue
from exporter.app import Exporter
from exporter.transitions import Transition
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, scrape, settings_for, value

OUTAGES = [("refuse", "connection"), ("unavailable", "503")]


@pytest.mark.parametrize(("mode", "code"), OUTAGES, ids=[o[0] for o in OUTAGES])
async def test_outage_flips_reachability_and_back(
    sim: SimulatorServer, mode: str, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")  # as with --log-level warning
    seen = Transitions()
    async with Exporter(settings_for(sim, contexts=("c1", "c2")), transition_sink=seen) as exporter:
        await eventually(exporter.ready)
        samples = await scrape(exporter.url)
        assert value(samples, "flux_cluster_reachable", cluster="c1") == 1

        sim.cluster("c1").set_outage(mode)  # type: ignore[arg-type]

        async def down() -> bool:
            s = await scrape(exporter.url)
            return value(s, "flux_cluster_reachable", cluster="c1") == 0

        await eventually(down)
        during = await scrape(exporter.url)
        assert value(during, "flux_cluster_reachable", cluster="c2") == 1  # others unaffected
        assert (value(during, catalogue.API_ERRORS.name, cluster="c1", code=code) or 0) >= 1
        # The objects stay exported (last known state) while the cluster is away.
        assert value(during, "flux_cluster_synced", cluster="c1") == 1

        sim.cluster("c1").set_outage(None)

        async def up() -> bool:
            s = await scrape(exporter.url)
            return value(s, "flux_cluster_reachable", cluster="c1") == 1

        await eventually(up)
        assert exporter.ready()
        await eventually(lambda: len(seen.cluster_level()) >= 2)
    # One outage, one recovery; nothing for the start (first contact is not a recovery).
    assert seen.cluster_level() == [("c1", "cluster_unreachable"), ("c1", "cluster_reachable")]
    # Both are visible at warning level: the failure and the line that ends it.
    c1_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cluster c1:")]
    assert any(line.startswith("cluster c1: unreachable") for line in c1_lines), c1_lines
    assert c1_lines[-1].startswith("cluster c1: reachable, synced"), c1_lines


class Transitions:
    """The transition hook as ``fluxwatch run`` wires it, keeping what it is handed."""

    def __init__(self) -> None:
        self.items: list[Transition] = []

    async def publish(self, transition: Transition) -> None:
        self.items.append(transition)

    def cluster_level(self) -> list[tuple[str, str]]:
        return [(t.cluster, t.type) for t in self.items if t.type.startswith("cluster_")]
