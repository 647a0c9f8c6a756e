"""A watch stream that goes silent (no events, no bookmarks) is reopened after the timeout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from catalogue import exporter as catalogue
from exporter.app import Exporter
from simulator.scenario import preset
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import (
    FAST_WATCH,
    eventually,
    make_failing,
    scrape,
    settings_for,
    value,
)


async def test_silent_stream_is_reopened_and_keeps_working(tmp_path: Path) -> None:
    # Manual clock (nothing changes) and bookmarks far apart: every stream stays silent.
    async with SimulatorServer(
        preset("small", seed=4), state_dir=tmp_path / "sim", bookmark_interval=3600
    ) as sim:
        watch = dataclasses.replace(FAST_WATCH, inactivity_timeout_seconds=0.3)
        async with Exporter(settings_for(sim, contexts=("c1",), watch=watch)) as exporter:
            await eventually(exporter.ready)

            async def reopened() -> bool:
                samples = await scrape(exporter.url)
                restarts = value(
                    samples, catalogue.WATCH_RESTARTS.name, cluster="c1", reason="inactivity"
                )
                return (restarts or 0) >= 15  # each of the 14 kinds at least once, about

            await eventually(reopened)
            target = sim.cluster("c1").objects("Kustomization")[0]
            sim.cluster("c1").apply(make_failing(target))
            meta = target["metadata"]

            def failing() -> bool:
                state = exporter.store.state_of(
                    "c1", "Kustomization", meta["namespace"], meta["name"]
                )
                return state is not None and state.derived.status == "failing"

            await eventually(failing)
            samples = await scrape(exporter.url)
    assert value(samples, catalogue.RELISTS.name, cluster="c1") in (
        None,
        0.0,
    )  # reopened from its version
    assert value(samples, "flux_cluster_reachable", cluster="c1") == 1  # silence is not an outage
