"""Every commit-status host gets the fleet status in its own terms, and a bad token is a dead
letter for that destination only: Gitea/Forgejo, Bitbucket Cloud (401), Bitbucket Data Center,
Azure DevOps (203 sign-in page, which must not count as success)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.pipelines.bridgeharness import TOKEN, BridgeRunner, bridge_document, until
from tests.pipelines.githosts import (
    FakeAzureDevOps,
    FakeBitbucketCloud,
    FakeBitbucketServer,
    FakeGitea,
    FakeGitHost,
    FakeGitHub,
    FakeGitLab,
)

SHA = "c" * 40
CASES: list[tuple[str, type[FakeGitHost], str, str, str, int]] = [
    # type, fake, source URL (host replaced), expected path part, success state, bad-token code
    (
        "github",
        FakeGitHub,
        "https://HOST/acme/podinfo.git",
        "/repos/acme/podinfo/statuses/",
        "success",
        401,
    ),
    (
        "gitlab",
        FakeGitLab,
        "https://HOST/acme/team/podinfo",
        "/api/v4/projects/acme%2Fteam%2Fpodinfo/statuses/",
        "success",
        401,
    ),
    (
        "gitea",
        FakeGitea,
        "ssh://git@HOST:2222/acme/podinfo.git",
        "/api/v1/repos/acme/podinfo/statuses/",
        "success",
        401,
    ),
    (
        "bitbucket",
        FakeBitbucketCloud,
        "git@HOST:acme/podinfo.git",
        "/2.0/repositories/acme/podinfo/commit/",
        "SUCCESSFUL",
        401,
    ),
    (
        "bitbucket_server",
        FakeBitbucketServer,
        "https://HOST/scm/acme/podinfo.git",
        "/rest/api/latest/projects/ACME/repos/podinfo/commits/",
        "SUCCESSFUL",
        401,
    ),
    (
        "azure_devops",
        FakeAzureDevOps,
        "https://HOST/acme/platform/_git/podinfo",
        "/acme/platform/_apis/git/repositories/podinfo/commits/",
        "succeeded",
        203,
    ),
]


@pytest.mark.parametrize(
    ("kind", "fake", "source", "path", "success", "bad_code"), CASES, ids=[c[0] for c in CASES]
)
async def test_fleet_status_and_bad_token(
    tmp_path: Path,
    kind: str,
    fake: type[FakeGitHost],
    source: str,
    path: str,
    success: str,
    bad_code: int,
) -> None:
    host = await fake(token="good-token").start()
    (tmp_path / "good").write_text("good-token")
    (tmp_path / "bad").write_text("revoked-token")
    common: dict[str, Any] = {"type": kind, "base_url": host.url, "hosts": ["git.example.com"]}
    runner = BridgeRunner(
        bridge_document(
            tmp_path / "state",
            tmp_path / "token",
            rollouts={"status_interval": "0s"},
            destinations={
                "good": {**common, "token_file": str(tmp_path / "good")},
                "bad": {**common, "token_file": str(tmp_path / "bad")},
            },
        ),
        tmp_path,
    )
    await runner.start()
    try:
        url = source.replace("HOST", "git.example.com")
        doc = {
            "shard": 0,
            "total_shards": 1,
            "synced": True,
            "clusters": [
                {
                    "cluster": f"c{i}",
                    "objects": [
                        {
                            "kind": "Kustomization",
                            "namespace": "apps",
                            "name": "podinfo",
                            "applied": f"main@sha1:{SHA}",
                            "status": "ready",
                            "source_url": url,
                        }
                    ],
                }
                for i in range(4)
            ],
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                runner.url + "/exporter/v1/rollouts",
                json=doc,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as resp,
        ):
            assert resp.status == 202
        assert runner.bridge is not None
        store = runner.bridge.rollouts.store

        async def dead() -> list[Any]:
            return await store.call(
                lambda conn: conn.execute(
                    "SELECT destination, last_code, last_error FROM status_queue WHERE dead=1"
                ).fetchall()
            )

        await until(lambda: host.posts, "the status on the host")
        rows = await until(dead, "the bad token's status to be dead")
        await until(runner.bridge.rollouts.statuses.idle, "the publisher to drain")
    finally:
        await runner.stop()
        await host.stop()
    assert len(host.posts) == 1
    post = host.posts[0]
    assert path in post.path
    assert SHA in post.path
    assert post.body["state"] == success
    assert post.body["description"] == "applied on 4/4 clusters"
    assert [(d, code) for d, code, _ in rows] == [("bad", bad_code)]
    assert "revoked-token" not in rows[0][2]
