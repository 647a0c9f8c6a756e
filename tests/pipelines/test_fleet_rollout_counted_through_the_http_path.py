"""One exporter watching a simulated fleet over the real client reports rollouts to a bridge over
HTTP: the bridge's rollout view and the exporter's flux_rollout_clusters count every cluster."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from exporter.app import Exporter
from exporter.settings import ExporterSettings
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import SimulatorServer
from tests.exporter.scrape import samples
from tests.pipelines.bridgeharness import BridgeRunner, bridge_document, until

APPS = AppMix(git=1, helm=0, oci=0, bucket=0, image=0, canary=0, notification=0)
CLUSTERS = 6
OBJECT = ("Kustomization", "payments", "podinfo")


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[SimulatorServer, BridgeRunner, Exporter]]:
    scenario = Scenario(
        name="rollout",
        seed=11,
        clusters=tuple(ClusterSpec(f"c{i}", apps=APPS) for i in range(CLUSTERS)),
    )
    token_file = tmp_path / "token"
    runner = BridgeRunner(bridge_document(tmp_path / "state", token_file), tmp_path)
    await runner.start()
    try:
        async with SimulatorServer(scenario, state_dir=tmp_path / "sim", time_scale=None) as sim:
            settings = ExporterSettings(
                kubeconfig=str(sim.kubeconfig_path),
                listen="127.0.0.1:0",
                bridge_url=runner.url,
                bridge_token_file=str(token_file),
            )
            async with Exporter(settings) as exporter:
                yield sim, runner, exporter
    finally:
        await runner.stop()


def fleet_truth(sim: SimulatorServer, revision: str) -> tuple[int, bool]:
    """What the simulator says: clusters that applied ``revision``, and whether any offers it."""
    applied = offered = 0
    for i in range(CLUSTERS):
        cluster = sim.cluster(f"c{i}")
        ks = cluster.get(*OBJECT) or {}
        source = cluster.get("GitRepository", "payments", "podinfo") or {}
        applied += ks.get("status", {}).get("lastAppliedRevision") == revision
        offered += source.get("status", {}).get("artifact", {}).get("revision") == revision
    return applied, offered > 0


async def view(runner: BridgeRunner) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(runner.url + "/rollouts") as resp:
        rows: list[dict[str, Any]] = (await resp.json())["rollouts"]
    return rows


async def current(runner: BridgeRunner) -> dict[str, Any] | None:
    for row in await view(runner):
        if (row["kind"], row["namespace"], row["name"]) == OBJECT and row["current"]:
            return row
    return None


async def test_rollout_goes_pending_then_applied_everywhere(tmp_path: Path) -> None:
    async with fleet(tmp_path) as (sim, runner, exporter):

        async def settled() -> bool:
            row = await current(runner)
            return row is not None and row["state"] == "success" and row["total"] == CLUSTERS

        await until(settled, "the first report of every cluster")
        first = await current(runner)
        assert first is not None
        revision = sim.new_commit("GitRepository", "payments", "podinfo")

        async def started() -> dict[str, Any] | None:
            row = await current(runner)
            return row if row is not None and row["revision"] == revision else None

        seen_applied: set[int] = set()
        for _ in range(300):
            await sim.advance(15)
            applied, offered = fleet_truth(sim, revision)
            if not offered:
                continue

            async def caught_up(applied: int = applied) -> dict[str, Any] | None:
                row = await started()
                return row if row is not None and row["applied"] == applied else None

            row = await until(caught_up, f"the bridge to count {applied} applied")
            assert row["total"] == CLUSTERS
            assert row["failing"] == 0
            seen_applied.add(applied)
            if applied == CLUSTERS:
                assert row["state"] == "success"
                assert row["description"] == f"applied on {CLUSTERS}/{CLUSTERS} clusters"
                break
            assert row["state"] == "pending"
            assert row["description"] == f"applied on {applied}/{CLUSTERS} clusters"
        else:
            raise AssertionError("the rollout never finished")
        assert row["applied"] == CLUSTERS
        assert len(seen_applied) > 1, "never saw the rollout in progress"
        rows = await view(runner)
        older = [r for r in rows if r["revision"] == first["revision"]]
        assert older
        assert older[0]["state"] == "superseded"

        async with (
            aiohttp.ClientSession() as http,
            http.get(exporter.url + "/metrics") as resp,
        ):
            data = samples(await resp.text())
        applied = {
            dict(labels).get("revision"): v
            for (name, labels), v in data.items()
            if name == "flux_rollout_clusters"
            and dict(labels).get("name") == "podinfo"
            and dict(labels).get("state") == "applied"
        }
        assert applied == {revision: CLUSTERS}


async def test_failing_clusters_turn_the_rollout_to_failure(tmp_path: Path) -> None:
    async with fleet(tmp_path) as (sim, runner, _exporter):

        async def reported() -> bool:
            row = await current(runner)
            return row is not None and row["total"] == CLUSTERS and row["state"] == "success"

        await until(reported, "the first report of every cluster")
        for name in ("c1", "c4"):
            sim.cluster(name).fail(*OBJECT, "build")
        revision = sim.new_commit("GitRepository", "payments", "podinfo")
        for _ in range(300):
            await sim.advance(15)
            applied, _offered = fleet_truth(sim, revision)
            if applied == CLUSTERS - 2:
                break
        else:
            raise AssertionError("the rollout never reached the healthy clusters")

        async def failed() -> dict[str, Any] | None:
            row = await current(runner)
            done = row is not None and row["revision"] == revision and row["failing"] == 2
            return row if done and row["applied"] == CLUSTERS - 2 else None

        row = await until(failed, "two failing clusters counted")
        assert row["state"] == "failure"
        assert row["failing"] == 2
        assert [f["cluster"] for f in row["failing_clusters"]] == ["c1", "c4"]
        assert row["description"].startswith("failed on 2/6 clusters: c1, c4")
