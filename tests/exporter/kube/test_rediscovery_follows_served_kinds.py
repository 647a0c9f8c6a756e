"""What discovery finds drives the watches: a kind gone is dropped, a kind added is synced."""

from __future__ import annotations

from exporter.app import Exporter
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, settings_for

IMAGE_KINDS = {"ImageRepository", "ImagePolicy", "ImageUpdateAutomation"}


async def test_kinds_leaving_and_joining_discovery(sim: SimulatorServer) -> None:
    async with Exporter(settings_for(sim, contexts=("c1",))) as exporter:
        await eventually(exporter.ready)
        assert exporter.fleet is not None
        runner, _ = exporter.fleet.runners["c1"]
        full = {kind: api.rsplit("/", 1)[1] for kind, api in runner.state.served.items()}
        assert set(full) >= IMAGE_KINDS
        store = exporter.store.clusters["c1"]
        assert all(store.kinds[k].states for k in IMAGE_KINDS)

        # Image automation uninstalled: its objects go, the rest stays.
        runner.apply_served({k: v for k, v in full.items() if k not in IMAGE_KINDS})
        assert not any(store.kinds[k].states for k in IMAGE_KINDS if k in store.kinds)
        assert store.kinds["Kustomization"].states
        assert not IMAGE_KINDS & set(runner.state.served)

        # Installed again (what the periodic re-discovery sees): listed and watched again.
        runner.apply_served(full)
        await eventually(lambda: all(store.kinds[k].states for k in IMAGE_KINDS))
        await eventually(lambda: runner.state.synced)
        assert set(runner.state.served) >= IMAGE_KINDS
