"""A kubeconfig directory: a file added starts a cluster, a file removed drops it and its series."""

from __future__ import annotations

from pathlib import Path

import yaml

from exporter.app import Exporter
from exporter.kube.client import ConnectionFailed
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, scrape, series, settings_for


def write_single_context(sim: SimulatorServer, context: str, path: Path) -> None:
    """One cluster's kubeconfig, cut from the simulator's (what a Secret per cluster holds)."""
    full = yaml.safe_load(sim.kubeconfig_path.read_text())
    ctx = next(c for c in full["contexts"] if c["name"] == context)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "contexts": [ctx],
        "clusters": [c for c in full["clusters"] if c["name"] == ctx["context"]["cluster"]],
        "users": [u for u in full["users"] if u["name"] == ctx["context"]["user"]],
    }
    tmp = path.with_name("." + path.name)  # hidden while half-written: the scan skips it
    tmp.write_text(yaml.safe_dump(doc))
    tmp.rename(path)


async def test_files_added_and_removed_are_followed(sim: SimulatorServer, tmp_path: Path) -> None:
    directory = tmp_path / "clusters"
    directory.mkdir()
    write_single_context(sim, "c1", directory / "c1.yaml")
    (directory / "notes.txt").write_text("not a kubeconfig: [")
    settings = settings_for(
        sim, kubeconfig="", kubeconfig_dir=str(directory), dir_scan_interval_seconds=0.1
    )
    async with Exporter(settings) as exporter:
        await eventually(exporter.ready)
        assert set(exporter.store.clusters) == {"c1"}

        write_single_context(sim, "c2", directory / "c2.yaml")
        await eventually(lambda: set(exporter.store.clusters) == {"c1", "c2"})
        await eventually(exporter.ready)
        samples = await scrape(exporter.url)
        assert series(samples, "flux_resource_status", cluster="c2")

        (directory / "c1.yaml").unlink()
        await eventually(lambda: set(exporter.store.clusters) == {"c2"})
        samples = await scrape(exporter.url)
    stale = [labels for (_, labels) in samples if ("cluster", "c1") in labels]
    assert not stale
    assert series(samples, "flux_resource_status", cluster="c2")


async def test_a_late_report_from_a_removed_cluster_does_not_bring_it_back(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    directory = tmp_path / "clusters"
    directory.mkdir()
    for name in ("c1", "c2"):
        write_single_context(sim, name, directory / f"{name}.yaml")
    # A long scan interval: the test reconciles by hand, with nothing awaited in between.
    settings = settings_for(
        sim, kubeconfig="", kubeconfig_dir=str(directory), dir_scan_interval_seconds=3600
    )
    async with Exporter(settings) as exporter:
        await eventually(exporter.ready)
        fleet = exporter.fleet
        assert fleet is not None
        runner, task = fleet.runners["c1"]
        (directory / "c1.yaml").unlink()
        fleet._reconcile()
        assert "c1" not in exporter.store.clusters
        # What a watch task does when its event lands before the runner's cleanup cancels it.
        runner.listed("Kustomization", 1)
        runner.request_failed(ConnectionFailed("late"))
        await eventually(task.done)
        assert set(exporter.store.clusters) == {"c2"}
        samples = await scrape(exporter.url)
    assert not [labels for (_, labels) in samples if ("cluster", "c1") in labels]
