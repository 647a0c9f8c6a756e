"""An OCI rollout's commit is the Git revision its artifact was built from, in every format Flux
records it; garbage or a missing origin names no commit and is skipped as ``no_commit``, counted
by the bridge, never posted to a digest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from notifiers.providers.commitstatus import CommitStatusOptions
from notifiers.providers.github import API as GITHUB
from notifiers.rollouts import ClusterObject, FailPolicy, Rollout, rollout_commit, tally
from notifiers.rolloutstore import connect, objects_of
from notifiers.statusplan import StatusTarget, desired_statuses
from tests.pipelines.bridgeharness import (
    BridgeRunner,
    oci_github_bridge,
    post_rollout_report,
    until,
)
from tests.pipelines.githosts import FakeGitHub

SHA1 = "363a6a8fe6a7f13e05d34c163b0ef02a777da20a"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
DIGEST = "d99be05257b6a154ce2ccce1afe0d2c007766f87626951a01004a355c81e1ee2"
OCI_REV = f"latest@sha256:{DIGEST}"
OCI_URL = "oci://ghcr.io/acme/manifests/podinfo"
GIT_URL = "https://github.com/acme/podinfo"

COMMITS = [
    # (revision, source_url, origins, commit)
    (OCI_REV, OCI_URL, [f"main@sha1:{SHA1}"], SHA1),
    (OCI_REV, OCI_URL, [f"refs/heads/main@sha1:{SHA1}"], SHA1),
    (OCI_REV, OCI_URL, [SHA1], SHA1),  # a bare sha
    (OCI_REV, OCI_URL, [SHA1.upper()], SHA1),
    (OCI_REV, OCI_URL, [f"6.1.8/{SHA1}"], SHA1),  # `flux push artifact --revision=<tag>/<sha>`
    (OCI_REV, OCI_URL, [f"6.1.6@sha1:{SHA1}"], SHA1),
    (OCI_REV, OCI_URL, [f"main@sha256:{SHA256}"], SHA256),  # a SHA-256 Git repository
    (OCI_REV, OCI_URL, ["not a commit", f"main@sha1:{SHA1}"], SHA1),  # first one naming one
    (f"sha256:{DIGEST}", OCI_URL, [f"main@sha1:{SHA1}"], SHA1),  # pulled by digest
    (OCI_REV, OCI_URL, [], ""),  # no origin recorded: the digest is no commit
    (OCI_REV, OCI_URL, ["v1.2.3"], ""),
    (OCI_REV, OCI_URL, ["main@sha1:nothex"], ""),
    (OCI_REV, OCI_URL, [f"main@sha1:{SHA1[:12]}"], ""),
    (OCI_REV, OCI_URL, ["", "\x00garbage\n"], ""),
    (f"main@sha1:{SHA1}", GIT_URL, [], SHA1),  # Git: the revision itself
    (f"main@sha1:{SHA1}", GIT_URL, ["v1.2.3"], SHA1),
    ("6.0.3+2", "", [], ""),  # a chart version
]


@pytest.mark.parametrize(("revision", "source_url", "origins", "commit"), COMMITS)
def test_rollout_commit(revision: str, source_url: str, origins: list[str], commit: str) -> None:
    assert rollout_commit(revision, source_url, origins) == commit


def ks(cluster: str, applied: str, origin: str, origin_of: str, wanted: str = "") -> ClusterObject:
    return ClusterObject(
        cluster,
        "Kustomization",
        "apps",
        "podinfo",
        applied,
        wanted or applied,
        wanted,
        "ready",
        source_url=OCI_URL,
        origin_revision=origin,
        origin_of=origin_of,
    )


OLD = f"latest@sha256:{'0' * 64}"


@pytest.mark.parametrize(
    ("objects", "commit"),
    [
        # every cluster applied it and recorded its origin
        ([ks("a", OCI_REV, f"main@sha1:{SHA1}", OCI_REV)], SHA1),
        # still pending everywhere: the source's annotation came with the wanted revision
        ([ks("a", OLD, f"main@sha1:{SHA1}", OCI_REV, wanted=OCI_REV)], SHA1),
        # an origin of another revision (the old one) is not this rollout's commit
        ([ks("a", OLD, f"main@sha1:{'b' * 40}", OLD, wanted=OCI_REV)], ""),
        ([ks("a", OCI_REV, "garbage", OCI_REV)], ""),
    ],
)
def test_tally_takes_the_origin_of_the_rollout_revision(
    objects: list[ClusterObject], commit: str
) -> None:
    r = Rollout(1, "Kustomization", "apps", "podinfo", OCI_REV, 0.0, OCI_URL)
    t = tally(r, objects, True)
    assert t.commit == commit
    options = CommitStatusOptions(
        base_url="https://api.github.com", token="t", repository="acme/manifests"
    )
    out, why = desired_statuses(r, t, FailPolicy(), StatusTarget("gh", GITHUB, options))
    if commit:
        assert (why, {s.sha for s, _ in out}) == ("", {commit})
    else:
        assert (out, why) == ([], "no_commit")


def report(origin: str) -> dict[str, object]:
    return {
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "applied": OCI_REV,
        "attempted": OCI_REV,
        "status": "ready",
        "source_url": OCI_URL,
        "origin_revision": origin,
        "origin_of": OCI_REV,
    }


async def test_garbage_origin_is_skipped_and_counted(tmp_path: Path) -> None:
    github = await FakeGitHub(token="gh-token").start()
    document = oci_github_bridge(tmp_path, github.url)
    runner = BridgeRunner(document, tmp_path)
    bridge = await runner.start()
    try:
        await post_rollout_report(runner.url, 0, 1, {"c0": [report("v1.2.3 (no commit)")]})

        def skipped() -> float:
            value = bridge.metrics.registry.get_sample_value(
                "fluxwatch_bridge_commit_statuses_skipped_total",
                {"destination": "github", "reason": "no_commit"},
            )
            return value or 0.0

        await until(skipped, "the no_commit skip to be counted")
        assert skipped() == 1
        assert github.posts == []  # nothing went to the artifact digest
    finally:
        await runner.stop()
        await github.stop()


def test_state_file_of_an_older_bridge_gains_the_origin_columns(tmp_path: Path) -> None:
    path = tmp_path / "rollouts.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE objects (kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, "
        "cluster TEXT NOT NULL, applied TEXT NOT NULL, attempted TEXT NOT NULL, wanted TEXT NOT "
        "NULL, status TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, applied_at "
        "REAL, source_url TEXT NOT NULL, observed_at REAL NOT NULL, "
        "PRIMARY KEY (kind, namespace, name, cluster)) WITHOUT ROWID"
    )
    old.execute(
        "INSERT INTO objects VALUES ('Kustomization', 'apps', 'podinfo', 'c0', ?, ?, '', "
        "'ready', '', '', NULL, ?, 1.0)",
        (OCI_REV, OCI_REV, OCI_URL),
    )
    old.commit()
    old.close()
    conn = connect(path)
    try:
        (kept,) = objects_of(conn, ("Kustomization", "apps", "podinfo"))
        assert (kept.applied, kept.origin_revision, kept.origin_of) == (OCI_REV, "", "")
    finally:
        conn.close()
