"""Fleet rollouts become one commit status per object and commit on GitHub and GitLab.

Three exporter shards report their clusters to one bridge over HTTP; fake GitHub and GitLab
servers enforce the real APIs. The fleet context goes pending -> success with the exact counts,
turns to failure naming the failing clusters, is never posted twice with the same content (also
across a bridge restart), and bad input (no commit, a source on another host, a token without
permission) is skipped or dead-lettered without touching the other statuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.pipelines.bridgeharness import TOKEN, BridgeRunner, bridge_document, until
from tests.pipelines.githosts import FakeGitHub, FakeGitLab

SHARDS = 3
PER_SHARD = 10
CLUSTERS = [f"prod-{i:03d}" for i in range(SHARDS * PER_SHARD)]
SHA_A = "a" * 40
SHA_B = "b" * 40
REV_A = f"main@sha1:{SHA_A}"
REV_B = f"main@sha1:{SHA_B}"
GITHUB_REPO = "https://github.com/acme/podinfo.git"
GITLAB_REPO = "git@gitlab.example.com:acme/platform/infra.git"
FLEET = "fluxwatch/fleet/Kustomization/apps/podinfo"
GL_FLEET = "fluxwatch/fleet/Kustomization/flux-system/infra"


def obj(
    name: str,
    applied: str,
    *,
    wanted: str = "",
    status: str = "ready",
    reason: str = "",
    source: str = GITHUB_REPO,
    namespace: str = "apps",
    kind: str = "Kustomization",
) -> dict[str, Any]:
    return {
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "applied": applied,
        "attempted": wanted or applied,
        "wanted": wanted,
        "status": status,
        "reason": reason,
        "message": "",
        "applied_at": None,
        "source_url": source,
    }


class Fleet:
    """What each cluster runs; ``send`` reports it shard by shard, as three exporters would."""

    def __init__(self, runner: BridgeRunner) -> None:
        self.runner = runner
        self.state: dict[str, list[dict[str, Any]]] = {
            c: [
                obj("podinfo", REV_A),
                obj("infra", REV_A, source=GITLAB_REPO, namespace="flux-system"),
            ]
            for c in CLUSTERS
        }

    async def send(self, shards: range = range(SHARDS)) -> None:
        async with aiohttp.ClientSession() as http:
            for shard in shards:
                mine = CLUSTERS[shard * PER_SHARD : (shard + 1) * PER_SHARD]
                doc = {
                    "shard": shard,
                    "total_shards": SHARDS,
                    "synced": True,
                    "clusters": [{"cluster": c, "objects": self.state[c]} for c in mine],
                }
                async with http.post(
                    self.runner.url + "/exporter/v1/rollouts",
                    json=doc,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as resp:
                    assert resp.status == 202, await resp.text()


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[FakeGitHub, FakeGitLab]]:
    github = await FakeGitHub(token="gh-token").start()
    gitlab = await FakeGitLab(token="gl-token").start()
    yield github, gitlab
    await github.stop()
    await gitlab.stop()


def document(
    tmp_path: Path, github: FakeGitHub, gitlab: FakeGitLab, **rollouts: Any
) -> dict[str, Any]:
    (tmp_path / "gh").write_text("gh-token")
    (tmp_path / "gh-ro").write_text(github.readonly_token)
    (tmp_path / "gl").write_text("gl-token")
    return bridge_document(
        tmp_path / "state",
        tmp_path / "token",
        rollouts={"status_interval": "0s", "fail_count": 3, **rollouts},
        destinations={
            "github": {
                "type": "github",
                "base_url": github.url,
                "hosts": ["github.com"],
                "token_file": str(tmp_path / "gh"),
                "target_url": "https://fluxwatch.example.com/rollouts",
            },
            "github-readonly": {
                "type": "github",
                "base_url": github.url,
                "hosts": ["github.com"],
                "token_file": str(tmp_path / "gh-ro"),
                "objects": ["Kustomization/apps/podinfo"],
            },
            "gitlab": {
                "type": "gitlab",
                "base_url": gitlab.url,
                "hosts": ["gitlab.example.com"],
                "token_file": str(tmp_path / "gl"),
            },
        },
    )


async def settled(runner: BridgeRunner) -> None:
    assert runner.bridge is not None
    publisher = runner.bridge.rollouts.statuses
    await until(publisher.idle, "the status publisher to drain")


def metric(runner: BridgeRunner, name: str, **labels: str) -> float:
    assert runner.bridge is not None
    value = runner.bridge.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_rollout_pending_to_success_with_exact_counts(
    tmp_path: Path, hosts: tuple[FakeGitHub, FakeGitLab]
) -> None:
    github, gitlab = hosts
    runner = BridgeRunner(document(tmp_path, github, gitlab), tmp_path)
    await runner.start()
    fleet = Fleet(runner)
    try:
        await fleet.send(range(2))  # shard 2 has not reported yet: no success for 20 clusters
        await settled(runner)
        first = github.statuses(SHA_A)[FLEET]
        assert first[-1]["state"] == "pending"
        assert (
            first[-1]["description"]
            == "applied on 20/20 clusters (waiting for every exporter shard)"
        )
        await fleet.send(range(2, 3))
        await settled(runner)
        assert github.statuses(SHA_A)[FLEET][-1]["description"] == "applied on 30/30 clusters"
        assert github.statuses(SHA_A)[FLEET][-1]["state"] == "success"

        # Commit B reaches the fleet: every cluster wants it, then they apply it one by one.
        for c in CLUSTERS:
            fleet.state[c][0] = obj("podinfo", REV_A, wanted=REV_B)
        await fleet.send()
        await settled(runner)
        for n, c in enumerate(CLUSTERS, start=1):
            fleet.state[c][0] = obj("podinfo", REV_B)
            if n % 7 == 0 or n == len(CLUSTERS):
                await fleet.send()
                await settled(runner)
                last = github.statuses(SHA_B)[FLEET][-1]
                if n < len(CLUSTERS):
                    assert (last["state"], last["description"]) == (
                        "pending",
                        f"applied on {n}/30 clusters",
                    )
        b = github.statuses(SHA_B)[FLEET]
        # Shards report one after another, so a step may show a shard's share first; the counts
        # only grow, every step's figure was shown, and nothing was posted twice.
        counts = [int(s["description"].split()[2].split("/")[0]) for s in b]
        assert counts == sorted(set(counts))
        assert {0, 7, 14, 21, 28, 30} <= set(counts)
        assert b[-1]["state"] == "success"
        assert b[-1]["target_url"] == "https://fluxwatch.example.com/rollouts"
        assert all(len(s["description"]) <= 140 for s in b)

        # GitLab got its own object's status with its own state names (subgroup path encoded).
        gl = gitlab.statuses(SHA_A)[GL_FLEET]
        assert gl[-1]["state"] == "success"
        assert gitlab.posts[-1].path == f"/api/v4/projects/acme%2Fplatform%2Finfra/statuses/{SHA_A}"

        # Idempotent: the same reports again, and a restart, post nothing new.
        posts = len(github.posts), len(gitlab.posts)
        await fleet.send()
        await settled(runner)
        await runner.stop()
        await runner.start()
        await fleet.send()
        await settled(runner)
        assert (len(github.posts), len(gitlab.posts)) == posts

        # The token without permission: 403, dead, counted; the good token was unaffected.
        assert (
            metric(
                runner,
                "fluxwatch_bridge_commit_statuses_total",
                destination="github",
                outcome="posted",
            )
            == 0
        )  # counters restart with the process
        assert any(code == 403 for code, _ in github.refused)
        dead = await runner.bridge.rollouts.store.call(  # type: ignore[union-attr]
            lambda conn: conn.execute(
                "SELECT destination, last_code FROM status_queue WHERE dead=1"
            ).fetchall()
        )
        assert set(dead) == {("github-readonly", 403)}
        # ... and shown where the release manager looks, with the host's reason.
        async with (
            aiohttp.ClientSession() as http,
            http.get(runner.url + "/rollouts", params={"format": "text"}) as resp,
        ):
            text = await resp.text()
        assert (
            "dead commit status: github-readonly fluxwatch/fleet/Kustomization/apps/podinfo" in text
        )
        assert "Resource not accessible by personal access token" in text
        assert github.readonly_token not in text
    finally:
        await runner.stop()


async def test_failing_clusters_turn_the_fleet_status_to_failure(
    tmp_path: Path, hosts: tuple[FakeGitHub, FakeGitLab]
) -> None:
    github, gitlab = hosts
    runner = BridgeRunner(document(tmp_path, github, gitlab), tmp_path)
    await runner.start()
    fleet = Fleet(runner)
    try:
        await fleet.send()
        for c in CLUSTERS:
            fleet.state[c][0] = obj("podinfo", REV_B)
        for c in ("prod-004", "prod-017", "prod-023"):
            fleet.state[c][0] = obj(
                "podinfo", REV_A, wanted=REV_B, status="failing", reason="BuildFailed"
            )
        # prod-023 applies after all: two failing, under fail_count 3, so still pending.
        fleet.state["prod-023"][0] = obj("podinfo", REV_B)
        await fleet.send()
        await settled(runner)
        last = github.statuses(SHA_B)[FLEET][-1]
        assert (last["state"], last["description"]) == (
            "pending",
            "applied on 28/30 clusters, 2 failing",
        )
        fleet.state["prod-023"][0] = obj(
            "podinfo", REV_A, wanted=REV_B, status="stalled", reason="HealthCheckFailed"
        )
        await fleet.send()
        await settled(runner)
        last = github.statuses(SHA_B)[FLEET][-1]
        assert last["state"] == "failure"
        assert last["description"] == (
            "failed on 3/30 clusters: prod-004, prod-017, prod-023; applied on 27/30"
        )
    finally:
        await runner.stop()


async def test_revisions_without_commit_and_foreign_hosts_are_skipped_and_counted(
    tmp_path: Path, hosts: tuple[FakeGitHub, FakeGitLab]
) -> None:
    github, gitlab = hosts
    runner = BridgeRunner(document(tmp_path, github, gitlab), tmp_path)
    await runner.start()
    fleet = Fleet(runner)
    for c in CLUSTERS:
        fleet.state[c] = [
            obj("chart", "6.0.3+2", kind="HelmRelease", source=""),
            obj("elsewhere", REV_A, source="https://git.example.org/acme/elsewhere.git"),
        ]
    try:
        await fleet.send()
        await settled(runner)
        assert github.posts == []
        assert gitlab.posts == []
        assert (
            metric(
                runner,
                "fluxwatch_bridge_commit_statuses_skipped_total",
                destination="github",
                reason="no_commit",
            )
            == 1
        )
        assert (
            metric(
                runner,
                "fluxwatch_bridge_commit_statuses_skipped_total",
                destination="github",
                reason="other_host",
            )
            == 1
        )
        async with aiohttp.ClientSession() as http, http.get(runner.url + "/rollouts") as resp:
            rows = (await resp.json())["rollouts"]
        assert {(r["name"], r["state"], r["applied"]) for r in rows} == {
            ("chart", "success", 30),
            ("elsewhere", "success", 30),
        }
    finally:
        await runner.stop()


async def test_throttled_host_is_retried_after_retry_after(
    tmp_path: Path, hosts: tuple[FakeGitHub, FakeGitLab]
) -> None:
    github, gitlab = hosts
    github.throttle_next = 2
    github.retry_after = "0"
    runner = BridgeRunner(document(tmp_path, github, gitlab), tmp_path)
    await runner.start()
    try:
        await Fleet(runner).send()
        await until(lambda: FLEET in github.statuses(SHA_A), "the status after the 429s")
        assert [code for code, _ in github.refused].count(429) == 2
        assert github.statuses(SHA_A)[FLEET][-1]["state"] == "success"
    finally:
        await runner.stop()
