"""A Kustomization applied from an OCIRepository gets its fleet status on the Git commit the
artifact was built from: the simulator records it as Flux does (artifact annotation, then
``lastAppliedOriginRevision``), the exporter carries it to the bridge over HTTP, and the fake
GitHub receives the fleet status on that commit, never on the artifact's digest."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from exporter.app import Exporter
from exporter.settings import ExporterSettings
from notifiers.model import commit_sha
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import SimulatorServer
from tests.pipelines.bridgeharness import BridgeRunner, oci_github_bridge, until
from tests.pipelines.githosts import FakeGitHub

APPS = AppMix(git=0, helm=0, oci=1, bucket=0, image=0, canary=0, notification=0)
CLUSTERS = 4


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[SimulatorServer, BridgeRunner, FakeGitHub]]:
    scenario = Scenario(
        name="oci-rollout",
        seed=5,
        clusters=tuple(ClusterSpec(f"c{i}", apps=APPS) for i in range(CLUSTERS)),
    )
    github = await FakeGitHub(token="gh-token").start()
    document = oci_github_bridge(tmp_path, github.url, objects=["Kustomization/*/*-oci"])
    runner = BridgeRunner(document, tmp_path)
    await runner.start()
    try:
        async with SimulatorServer(scenario, state_dir=tmp_path / "sim", time_scale=None) as sim:
            settings = ExporterSettings(
                kubeconfig=str(sim.kubeconfig_path),
                listen="127.0.0.1:0",
                bridge_url=runner.url,
                bridge_token_file=str(tmp_path / "token"),
            )
            async with Exporter(settings):
                yield sim, runner, github
    finally:
        await runner.stop()
        await github.stop()


def oci_kustomization(sim: SimulatorServer) -> tuple[str, str, str]:
    for ks in sim.cluster("c0").objects("Kustomization"):
        if ks["spec"]["sourceRef"]["kind"] == "OCIRepository":
            ref = ks["spec"]["sourceRef"]["name"]
            return ks["metadata"]["namespace"], ks["metadata"]["name"], ref
    raise AssertionError("the scenario has no OCI-sourced Kustomization")


def applied(sim: SimulatorServer, namespace: str, name: str) -> list[tuple[str, str]]:
    """(lastAppliedRevision, lastAppliedOriginRevision) of every cluster."""
    out = []
    for i in range(CLUSTERS):
        status = (sim.cluster(f"c{i}").get("Kustomization", namespace, name) or {})["status"]
        out.append((status.get("lastAppliedRevision", ""), status["lastAppliedOriginRevision"]))
    return out


def offered(sim: SimulatorServer, cluster: str, namespace: str, name: str) -> str:
    source = sim.cluster(cluster).get("OCIRepository", namespace, name) or {}
    return str(source.get("status", {}).get("artifact", {}).get("revision", ""))


async def test_oci_fleet_status_lands_on_the_origin_commit(tmp_path: Path) -> None:
    async with fleet(tmp_path) as (sim, runner, github):
        namespace, name, repo = oci_kustomization(sim)
        context = f"fluxwatch/fleet/Kustomization/{namespace}/{name}"
        revision, origin = applied(sim, namespace, name)[0]
        assert "@sha256:" in revision  # an OCI artifact revision: a digest, not a commit
        sha = commit_sha(origin)
        assert sha

        def success_on(commit: str) -> bool:
            posted = github.statuses(commit).get(context, [])
            return bool(posted) and posted[-1]["state"] == "success"

        await until(lambda: success_on(sha), f"the fleet status on the origin commit {sha}")
        assert github.statuses(sha)[context][-1]["description"] == (
            f"applied on {CLUSTERS}/{CLUSTERS} clusters"
        )

        # A new artifact: its status goes to its own origin commit once every cluster has it.
        new = sim.new_commit("OCIRepository", namespace, repo)

        async def started() -> bool:
            rows = await runner.bridge.rollouts.store.call(  # type: ignore[union-attr]
                lambda conn: conn.execute(
                    "SELECT count(*) FROM rollouts WHERE revision=?", (new,)
                ).fetchone()
            )
            return bool(rows[0])

        seen_start = False
        for _ in range(2000):
            revisions = applied(sim, namespace, name)
            if all(rev == new for rev, _ in revisions):
                break
            if not seen_start and any(
                offered(sim, f"c{i}", namespace, repo) == new and revisions[i][0] != new
                for i in range(CLUSTERS)
            ):
                # a cluster offers the new artifact and has not applied it: the rollout starts
                await until(started, "the bridge to start the new rollout")
                seen_start = True
            await sim.advance(3)
        else:
            raise AssertionError("the new artifact never reached every cluster")
        origins = {o for _, o in applied(sim, namespace, name)}
        assert len(origins) == 1
        new_sha = commit_sha(origins.pop())
        assert new_sha not in ("", sha)
        await until(
            lambda: success_on(new_sha), f"the fleet status on the new origin commit {new_sha}"
        )
        # Nothing went to a digest: every posted SHA is one of the two origin commits.
        assert {p.path.rsplit("/", 1)[1] for p in github.posts} == {sha, new_sha}
