"""The pure decisions behind fleet rollouts and their commit statuses, table by table, with the
clock passed in: who counts as applied/pending/failing, when a rollout starts or is superseded,
what is pruned, and when a status is (not) posted again. (The store's side, on SQLite and
PostgreSQL: tests/notifiers/test_rollout_store_supersedes_and_prunes_on_both_stores.py.)"""

from __future__ import annotations

import pytest

from notifiers.providers.commitstatus import CommitStatus, CommitStatusOptions
from notifiers.providers.github import API as GITHUB
from notifiers.rollouts import (
    ClusterObject,
    FailPolicy,
    Rollout,
    cluster_verdict,
    fleet_chat_line,
    fleet_state,
    prunable,
    revisions_to_start,
    tally,
)
from notifiers.statusplan import (
    Posted,
    StatusTarget,
    desired_statuses,
    fleet_rollout_event,
    pace,
    plan_status,
)

A, B, C = (f"main@sha1:{c * 40}" for c in "abc")


def o(
    cluster: str,
    applied: str = A,
    attempted: str = "",
    wanted: str = "",
    status: str = "ready",
    reason: str = "",
    name: str = "podinfo",
) -> ClusterObject:
    return ClusterObject(
        cluster,
        "Kustomization",
        "apps",
        name,
        applied,
        attempted or applied,
        wanted,
        status,
        reason,
        source_url="https://github.com/acme/podinfo",
    )


@pytest.mark.parametrize(
    ("obj", "revision", "verdict"),
    [
        (o("c", A), A, "applied"),
        (o("c", A, wanted=B), B, "pending"),
        (o("c", A, attempted=B, status="failing"), B, "failing"),
        (o("c", B, status="failing"), B, "failing"),  # applied, then health checks fail
        (o("c", A, status="failing"), B, "pending"),  # failing on the old revision only
        (o("c", A, status="stalled", wanted=B), B, "failing"),
        (o("c", C), B, "pending"),
    ],
)
def test_cluster_verdict(obj: ClusterObject, revision: str, verdict: str) -> None:
    assert cluster_verdict(obj, revision) == verdict


def rollout(revision: str, rid: int = 1, at: float = 0.0, **kw: float) -> Rollout:
    return Rollout(rid, "Kustomization", "apps", "podinfo", revision, at, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("objects", "complete", "policy", "state", "description"),
    [
        (
            [o("a", B), o("b", A, wanted=B)],
            True,
            FailPolicy(),
            "pending",
            "applied on 1/2 clusters",
        ),
        ([o("a", B), o("b", B)], True, FailPolicy(), "success", "applied on 2/2 clusters"),
        (
            [o("a", B), o("b", B)],
            False,
            FailPolicy(),
            "pending",
            "applied on 2/2 clusters (waiting for every exporter shard)",
        ),
        (
            [o("a", B), o("b", A, wanted=B, status="failing")],
            True,
            FailPolicy(count=2),
            "pending",
            "applied on 1/2 clusters, 1 failing",
        ),
        (
            [o(f"c{i}", B) for i in range(18)]
            + [o("x", A, wanted=B, status="failing"), o("y", A, wanted=B, status="failing")],
            True,
            FailPolicy(count=5, share=0.1),
            "failure",
            "failed on 2/20 clusters: x, y; applied on 18/20",
        ),
        (
            [o(f"f{i}", A, wanted=B, status="failing", reason="BuildFailed") for i in range(5)],
            True,
            FailPolicy(),
            "failure",
            "failed on 5/5 clusters: f0, f1, f2 and 2 more; applied on 0/5",
        ),
        ([o("other", B, name="else")], True, FailPolicy(), "pending", "applied on 0/0 clusters"),
    ],
)
def test_fleet_state(
    objects: list[ClusterObject], complete: bool, policy: FailPolicy, state: str, description: str
) -> None:
    assert fleet_state(tally(rollout(B), objects, complete), policy) == (state, description)


@pytest.mark.parametrize(
    ("objects", "known", "has_rollout", "start"),
    [
        ([o("a", A), o("b", A)], [], False, [A]),  # first report: the running revision
        ([o("a", A), o("b", A, wanted=B)], [A], True, [B]),
        ([o("a", A)], [B], True, []),  # a straggler on an old revision starts nothing
        ([o("a", A, wanted=B), o("b", A, attempted=C, status="failing")], [A], True, [B, C]),
        ([o("a", B)], [A, B], True, []),
    ],
)
def test_revisions_to_start(
    objects: list[ClusterObject], known: list[str], has_rollout: bool, start: list[str]
) -> None:
    assert revisions_to_start(objects, known, has_rollout) == start


def test_prunable_keeps_current_and_recent() -> None:
    rollouts = [
        rollout(A, 1, superseded_at=100.0),
        rollout(B, 2, superseded_at=900.0),
        rollout(C, 3, success_at=50.0),
    ]
    assert prunable(rollouts, {3}, now=1000.0, retention=500.0) == [1]


def target(**kw: object) -> StatusTarget:
    options = CommitStatusOptions(base_url="https://api.github.com", token="t", **kw)  # type: ignore[arg-type]
    return StatusTarget("gh", GITHUB, options)


def test_desired_statuses_fleet_and_per_cluster() -> None:
    objects = [
        o("prod-eu-1", B),
        o("prod-us-1", A, wanted=B, status="failing", reason="BuildFailed"),
        o("edge-7", A, wanted=B),
    ]
    r = Rollout(1, "Kustomization", "apps", "podinfo", B, 0.0, "git@github.com:acme/podinfo.git")
    out, why = desired_statuses(
        r, tally(r, objects, True), FailPolicy(count=2), target(per_cluster=True)
    )
    assert why == ""
    got = {(s.context, s.state, s.description) for s, _ in out}
    assert got == {
        (
            "fluxwatch/fleet/Kustomization/apps/podinfo",
            "pending",
            "applied on 1/3 clusters, 1 failing",
        ),
        ("fluxwatch/prod-eu-1/Kustomization/apps/podinfo", "success", "applied"),
        ("fluxwatch/prod-us-1/Kustomization/apps/podinfo", "failure", "failing: BuildFailed"),
        ("fluxwatch/edge-7/Kustomization/apps/podinfo", "pending", "waiting to apply"),
    }
    assert {r.path for _, r in out} == {("acme", "podinfo")}


@pytest.mark.parametrize(
    ("source", "revision", "reason"),
    [
        ("https://github.com/acme/podinfo", "6.0.3+2", "no_commit"),
        ("https://gitlab.com/acme/podinfo", B, "other_host"),
        ("not a url", B, "unknown_repository"),
    ],
)
def test_nothing_to_publish_names_the_reason(source: str, revision: str, reason: str) -> None:
    r = Rollout(1, "Kustomization", "apps", "podinfo", revision, 0.0, source_url=source)
    out, why = desired_statuses(r, tally(r, [], True), FailPolicy(), target())
    assert (out, why) == ([], reason)


STATUS = CommitStatus("b" * 40, "ctx", "pending", "applied on 3/9 clusters")


@pytest.mark.parametrize(
    ("posted", "now", "expect"),
    [
        (None, 100.0, (True, 100.0, "")),
        (Posted("pending", "applied on 3/9 clusters", 4, 90.0), 100.0, (False, 0.0, "")),  # same
        (Posted("pending", "applied on 2/9 clusters", 4, 95.0), 100.0, (True, 105.0, "")),  # paced
        (Posted("failure", "failed", 4, 99.0), 100.0, (True, 100.0, "")),  # state change: now
        (
            Posted("pending", "applied on 2/9 clusters", 999, 0.0),
            100.0,
            (False, 0.0, "status_limit"),
        ),
    ],
)
def test_plan_status(posted: Posted | None, now: float, expect: tuple[bool, float, str]) -> None:
    assert plan_status(STATUS, posted, now, min_interval=10.0, max_posts=1000) == expect


def test_the_last_status_under_the_cap_is_kept_for_the_verdict() -> None:
    final = CommitStatus("b" * 40, "ctx", "success", "applied on 9/9 clusters")
    assert plan_status(
        final, Posted("pending", "x", 999, 0.0), 100.0, min_interval=10.0, max_posts=1000
    ) == (True, 100.0, "")
    assert plan_status(
        final, Posted("pending", "x", 1000, 0.0), 100.0, min_interval=10.0, max_posts=1000
    ) == (False, 0.0, "status_limit")


HEAD_B = "Kustomization apps/podinfo rev bbbbbbb: "
CHAT_LINES = [
    ("pending", [o("c1", B), o("c2", A, wanted=B)], None, ("pending", "applied on 1/2 clusters")),
    (
        "failing-named",
        [o("c1", B), o("c3", A, attempted=B, status="failing"), o("c2", A, wanted=B)],
        None,
        ("pending", "applied on 1/3 clusters, 1 failing (c3)"),
    ),
    (
        "failure-at-the-count",
        [o(f"c{i}", A, attempted=B, status="failing") for i in range(5)],
        None,
        ("failure", "applied on 0/5 clusters, 5 failing (c0, c1, c2 and 2 more)"),
    ),
    ("rolled-out", [o("c1", B), o("c2", B)], 840.0, ("success", "rolled out to 2/2 in 14m")),
    ("rolled-out-slowly", [o("c1", B)], 3900.0, ("success", "rolled out to 1/1 in 1h 5m")),
]


@pytest.mark.parametrize(
    ("objects", "finished", "expect"),
    [c[1:] for c in CHAT_LINES],
    ids=[c[0] for c in CHAT_LINES],
)
def test_fleet_chat_line(
    objects: list[ClusterObject], finished: float | None, expect: tuple[str, str]
) -> None:
    r = Rollout(1, "Kustomization", "apps", "podinfo", B, 0.0)
    state, line = fleet_chat_line(r, tally(r, objects, True), FailPolicy(count=3), finished)
    assert (state, line) == (expect[0], HEAD_B + expect[1])
    event = fleet_rollout_event(r, tally(r, objects, True), state, line, 5.0, "ev-1")
    assert (event.source, event.cluster, event.message, event.commit) == (
        "rollout",
        "*",
        line,
        "b" * 40,
    )


@pytest.mark.parametrize(
    ("posted", "now", "expect"),
    [
        (None, 100.0, 100.0),  # first message at once
        (Posted("pending", "applied on 1/2", 1, 95.0), 100.0, None),  # same line: nothing
        (Posted("pending", "applied on 0/2", 1, 95.0), 100.0, 105.0),  # progress waits
        (Posted("pending", "applied on 0/2", 1, 80.0), 100.0, 100.0),
        (Posted("failure", "applied on 0/2", 1, 99.0), 100.0, 100.0),  # a new state: at once
    ],
)
def test_chat_updates_are_paced_like_statuses(
    posted: Posted | None, now: float, expect: float | None
) -> None:
    assert pace("pending", "applied on 1/2", posted, now, 10.0) == expect
