"""A simulated fleet rollout watched by 3 exporter shards in separate processes, feeding one
bridge process over HTTP: the fleet status on (fake) GitHub goes pending -> success with the
exact counts, a variant with 3 failing clusters ends in failure naming them, and ``kill -9`` of
the bridge and of one exporter shard mid-rollout changes none of the final figures.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from notifiers.model import commit_sha
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import SimulatorServer
from tests.cli.process import Fluxwatch
from tests.exporter.scrape import samples
from tests.pipelines.bridgeharness import TOKEN, until
from tests.pipelines.githosts import FakeGitHub

CLUSTERS = 30
SHARDS = 3
APPS = AppMix(git=1, helm=0, oci=0, bucket=0, image=0, canary=0, notification=0)
OBJECT = ("Kustomization", "payments", "podinfo")
FLEET = "fluxwatch/fleet/Kustomization/payments/podinfo"
DEADLINE = 90.0


def exporter_url(process: Fluxwatch | None) -> str:
    """The address an exporter logged (``exporter listening on HOST:PORT (URL)``)."""
    assert process is not None
    for line in process.stderr:
        if match := re.search(r"exporter listening on \S+ \((http://[^)]+)\)", line):
            return match.group(1).rstrip("/")
    raise AssertionError("no listening line:\n" + "\n".join(process.stderr))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    tmp: Path
    sim: SimulatorServer
    github: FakeGitHub
    config: Path
    bridge_url: str
    bridge: Fluxwatch | None = None
    exporters: list[Fluxwatch | None] | None = None

    async def start_bridge(self) -> None:
        self.bridge = await Fluxwatch.start("bridge", "--config", str(self.config))
        await self.bridge.wait_for_line(r"listening on")

    async def start_exporter(self, shard: int) -> None:
        assert self.exporters is not None
        self.exporters[shard] = await Fluxwatch.start(
            "exporter",
            "--kubeconfig", str(self.sim.kubeconfig_path),
            "--total-shards", str(SHARDS),
            "--shard", str(shard),
            "--listen", "127.0.0.1:0",
            "--bridge-url", self.bridge_url,
            "--bridge-token-file", str(self.tmp / "exporter-token"),
        )  # fmt: skip

    async def kill9(self, process: Fluxwatch | None) -> None:
        assert process is not None
        process.proc.send_signal(signal.SIGKILL)
        await process.kill()  # reaps it and its output

    async def view(self) -> dict[str, Any] | None:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    self.bridge_url + "/rollouts", timeout=aiohttp.ClientTimeout(total=5)
                ) as resp,
            ):
                rows = (await resp.json())["rollouts"]
        except (aiohttp.ClientError, TimeoutError):
            return None
        for row in rows:
            if (row["kind"], row["namespace"], row["name"]) == OBJECT and row["current"]:
                return dict(row)
        return None

    def truth(self, revision: str) -> tuple[int, bool]:
        applied = offered = 0
        for i in range(CLUSTERS):
            cluster = self.sim.cluster(f"c{i:02d}")
            ks = cluster.get(*OBJECT) or {}
            src = cluster.get("GitRepository", "payments", "podinfo") or {}
            applied += ks.get("status", {}).get("lastAppliedRevision") == revision
            offered += src.get("status", {}).get("artifact", {}).get("revision") == revision
        return applied, offered > 0

    def last_status(self, sha: str) -> dict[str, Any] | None:
        statuses = self.github.statuses(sha).get(FLEET)
        return statuses[-1] if statuses else None


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path, fail_count: int = 1) -> AsyncIterator[Fleet]:
    scenario = Scenario(
        name="sharded-rollout",
        seed=5,
        clusters=tuple(ClusterSpec(f"c{i:02d}", apps=APPS) for i in range(CLUSTERS)),
    )
    github = await FakeGitHub(token="gh-token").start()
    (tmp_path / "gh-token").write_text("gh-token")
    (tmp_path / "exporter-token").write_text(TOKEN)
    port = free_port()
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "bridge": {
                    "listen": f"127.0.0.1:{port}",
                    "state_dir": str(tmp_path / "state"),
                    "exporters": {"token_file": str(tmp_path / "exporter-token")},
                    "rollouts": {"status_interval": "0s", "fail_count": fail_count},
                    "destinations": {
                        "github": {
                            "type": "github",
                            "base_url": github.url,
                            "hosts": ["github.com"],
                            "token_file": str(tmp_path / "gh-token"),
                        }
                    },
                }
            }
        )
    )
    try:
        async with SimulatorServer(scenario, state_dir=tmp_path / "sim", time_scale=None) as sim:
            f = Fleet(tmp_path, sim, github, config, f"http://127.0.0.1:{port}")
            f.exporters = [None] * SHARDS
            try:
                await f.start_bridge()
                for shard in range(SHARDS):
                    await f.start_exporter(shard)

                async def first_rollout_done() -> bool:
                    row = await f.view()
                    return bool(row and row["state"] == "success" and row["total"] == CLUSTERS)

                await until(first_rollout_done, "every shard's first report", DEADLINE)
                yield f
            finally:
                for process in [f.bridge, *f.exporters]:
                    if process is not None:
                        await process.kill()
    finally:
        await github.stop()


async def advance_until(f: Fleet, revision: str, applied: int) -> None:
    """Run simulated time until ``applied`` clusters applied ``revision`` (simulator's truth)."""
    for _ in range(400):
        if f.truth(revision)[0] >= applied:
            return
        await f.sim.advance(10)
    raise AssertionError(f"the simulator never reached {applied} applied")


async def bridge_counts(f: Fleet, revision: str, applied: int, failing: int = 0) -> dict[str, Any]:
    async def matches() -> dict[str, Any] | None:
        row = await f.view()
        if (
            row
            and row["revision"] == revision
            and (row["applied"], row["failing"])
            == (
                applied,
                failing,
            )
        ):
            return row
        return None

    row: dict[str, Any] = await until(matches, f"the bridge to count {applied} applied", DEADLINE)
    return row


async def test_rollout_counts_survive_kill9_of_bridge_and_one_shard(tmp_path: Path) -> None:
    async with fleet(tmp_path) as f:
        revision = f.sim.new_commit("GitRepository", "payments", "podinfo")
        sha = commit_sha(revision)
        seen: list[int] = []
        killed = False
        while True:
            await f.sim.advance(10)
            applied, offered = f.truth(revision)
            if not offered:
                continue
            row = await bridge_counts(f, revision, applied)
            assert row["total"] == CLUSTERS
            # The commit shows exactly what the bridge counts.
            await until(
                lambda a=applied: (
                    (s := f.last_status(sha)) is not None
                    and s["description"].startswith(f"applied on {a}/{CLUSTERS} clusters")
                ),
                f"GitHub to show {applied}/{CLUSTERS}",
                DEADLINE,
            )
            seen.append(applied)
            if applied == CLUSTERS:
                break
            if not killed and applied >= CLUSTERS // 4:
                killed = True
                assert f.exporters is not None
                await f.kill9(f.bridge)
                await f.kill9(f.exporters[1])
                await f.sim.advance(30)  # the fleet moves on while they are down
                await f.start_bridge()
                await f.start_exporter(1)
        assert killed, "the rollout finished before the kill"
        final = f.last_status(sha)
        assert final is not None
        assert (final["state"], final["description"]) == (
            "success",
            f"applied on {CLUSTERS}/{CLUSTERS} clusters",
        )
        assert seen == sorted(seen)
        row = await f.view()
        assert row is not None
        assert (row["applied"], row["pending"], row["failing"], row["total"]) == (
            CLUSTERS,
            0,
            0,
            CLUSTERS,
        )
        # Each shard's flux_rollout_clusters counts its own clusters; summed, they are the fleet.
        assert f.exporters is not None
        urls = [exporter_url(p) for p in f.exporters]

        async def summed() -> bool:
            total = 0.0
            async with aiohttp.ClientSession() as http:
                for url in urls:
                    async with http.get(url + "/metrics") as resp:
                        data = samples(await resp.text())
                    total += sum(
                        v
                        for (name, labels), v in data.items()
                        if name == "flux_rollout_clusters"
                        and dict(labels).get("name") == "podinfo"
                        and dict(labels).get("revision") == revision
                        and dict(labels).get("state") == "applied"
                    )
            return total == CLUSTERS

        await until(summed, "the shards' flux_rollout_clusters to sum to the fleet", DEADLINE)
        # The counts on the commit never went backwards, and nothing was posted twice except,
        # at most, the one status in flight when the bridge was killed (posted, not yet recorded).
        posted = [(s["state"], s["description"]) for s in f.github.statuses(sha)[FLEET]]
        counts = [int(d.split()[2].split("/")[0]) for _, d in posted]
        assert counts == sorted(counts)
        assert len(posted) - len(set(posted)) <= 1


@pytest.mark.parametrize("broken", [("c03", "c11", "c27")])
async def test_three_failing_clusters_turn_the_fleet_status_to_failure(
    tmp_path: Path, broken: tuple[str, ...]
) -> None:
    async with fleet(tmp_path, fail_count=3) as f:
        for name in broken:
            f.sim.cluster(name).fail(*OBJECT, "build")
        revision = f.sim.new_commit("GitRepository", "payments", "podinfo")
        sha = commit_sha(revision)
        await advance_until(f, revision, CLUSTERS - len(broken))
        row = await bridge_counts(f, revision, CLUSTERS - len(broken), len(broken))
        assert [c["cluster"] for c in row["failing_clusters"]] == list(broken)
        # The failure is posted as soon as the third cluster fails, while others still apply;
        # the status then follows the fleet until it reaches the final figures.
        expected = f"failed on 3/{CLUSTERS} clusters: c03, c11, c27; applied on 27/{CLUSTERS}"
        await until(
            lambda: (
                (s := f.last_status(sha)) is not None
                and (s["state"], s["description"]) == ("failure", expected)
            ),
            "the failure status with the final figures",
            DEADLINE,
        )
        states = {s["state"] for s in f.github.statuses(sha)[FLEET]}
        assert "success" not in states
