"""A cluster outage turns its reachability to 0 (API errors counted), and recovery back to 1."""

from __future__ import annotations

import pytest

from exporter.app import Exporter
from exporter.kube.health import API_ERRORS
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, scrape, settings_for, value

OUTAGES = [("refuse", "connection"), ("unavailable", "503")]


@pytest.mark.parametrize(("mode", "code"), OUTAGES, ids=[o[0] for o in OUTAGES])
async def test_outage_flips_reachability_and_back(
    sim: SimulatorServer, mode: str, code: str
) -> None:
    async with Exporter(settings_for(sim, contexts=("c1", "c2"))) as exporter:
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
        assert (value(during, API_ERRORS, cluster="c1", code=code) or 0) >= 1
        # The objects stay exported (last known state) while the cluster is away.
        assert value(during, "flux_cluster_synced", cluster="c1") == 1

        sim.cluster("c1").set_outage(None)

        async def up() -> bool:
            s = await scrape(exporter.url)
            return value(s, "flux_cluster_reachable", cluster="c1") == 1

        await eventually(up)
        assert exporter.ready()
