"""End-to-end harness: the simulator serving a tiny fleet, the real exporter watching it over
HTTPS through the real client, and /metrics read over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from exporter.app import Exporter
from exporter.settings import ExporterSettings
from exporter.transitions import Transition
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import ClusterHandle, SimulatorServer
from tests.exporter.scrape import Samples, samples

APPS = AppMix(git=1, helm=1, oci=0, bucket=0, image=0, canary=0, notification=0)
DEADLINE = 20.0


class ListSink:
    def __init__(self) -> None:
        self.got: list[Transition] = []

    async def publish(self, transition: Transition) -> None:
        self.got.append(transition)


@dataclass
class Running:
    sim: SimulatorServer
    exporter: Exporter
    http: aiohttp.ClientSession
    transitions: ListSink

    @property
    def c1(self) -> ClusterHandle:
        return self.sim.cluster("c1")

    async def scrape(self) -> Samples:
        async with self.http.get(f"{self.exporter.url}/metrics") as resp:
            assert resp.status == 200
            return samples(await resp.text())

    async def until(self, check: Callable[[Samples], bool], what: str) -> Samples:
        """Scrape until ``check`` holds; fail with ``what`` after the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while True:
            data = await self.scrape()
            if check(data):
                return data
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    apps: AppMix = APPS,
    scenario: Scenario | None = None,
    compat: bool = False,
    start_time: dt.datetime | None = None,
) -> AsyncIterator[Running]:
    if scenario is None:
        scenario = Scenario(name="e2e", seed=7, clusters=(ClusterSpec("c1", apps=apps),))
    sink = ListSink()
    async with SimulatorServer(
        scenario, state_dir=tmp_path / "sim", time_scale=None, start_time=start_time
    ) as sim:
        settings = ExporterSettings(
            kubeconfig=str(sim.kubeconfig_path),
            listen="127.0.0.1:0",
            per_object="all",
            gotk_resource_info=compat,
        )
        async with (
            Exporter(settings, transition_sink=sink) as exporter,
            aiohttp.ClientSession() as http,
        ):
            run = Running(sim, exporter, http, sink)
            clusters = len(scenario.clusters)
            await run.until(
                lambda d: (
                    sum(v for (n, _), v in d.items() if n == "flux_cluster_synced") == clusters
                ),
                "the first full sync",
            )
            yield run


def ref(obj: dict[str, object]) -> tuple[str, str]:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return meta["namespace"], meta["name"]
