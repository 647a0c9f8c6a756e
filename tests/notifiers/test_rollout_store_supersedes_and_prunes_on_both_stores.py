"""The rollout store behaves the same on SQLite and on PostgreSQL: each new revision starts a
rollout and supersedes the previous one with its tally, pruning removes finished rollouts past
the retention and history beyond the per-object cap, and the current rollout is never pruned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifiers.pgstore import PostgresSettings
from notifiers.rolloutpg import open_connection
from notifiers.rollouts import ClusterObject
from notifiers.rolloutstore import (
    RolloutConn,
    all_rollouts,
    apply_report,
    connect,
    prune_rollouts,
)


@pytest.fixture(params=["sqlite", "postgres"])
def rollout_conn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RolloutConn]:
    if request.param == "sqlite":
        conn = connect(tmp_path / "rollouts.sqlite3")
        yield conn
        conn.close()
        return
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(request.getfixturevalue("postgres_dsn"))
    pg = open_connection(PostgresSettings(dsn_file=dsn_file), create=True)
    yield pg
    pg.close()


def cluster_running(previous: str, wanted: str) -> ClusterObject:
    return ClusterObject(
        "c1",
        "Kustomization",
        "apps",
        "podinfo",
        applied=previous,
        attempted=previous,
        wanted=wanted,
        status="ready",
        source_url="https://github.com/acme/podinfo",
    )


def test_store_supersedes_prunes_and_bounds_history(rollout_conn: RolloutConn) -> None:
    conn = rollout_conn
    revisions = [f"main@sha1:{i:040x}" for i in range(30)]
    now = 1000.0
    for i, revision in enumerate(revisions):
        previous = revisions[i - 1] if i else revision
        apply_report(
            conn,
            shard=0,
            total_shards=1,
            synced=True,
            now=now + i,
            clusters={"c1": [cluster_running(previous, revision)]},
        )
    rows = all_rollouts(conn)
    assert [r.revision for r in rows] == revisions
    assert all(r.superseded_at is not None for r in rows[:-1])
    assert rows[-1].superseded_at is None
    assert (rows[-2].summary["pending"], rows[-2].summary["total"]) == (0, 1)
    removed = prune_rollouts(conn, now=now + 40, retention=20.0)
    kept = [r.revision for r in all_rollouts(conn)]
    assert kept == revisions[-10:]  # superseded within the retention, plus the current one
    assert removed == 20
    prune_rollouts(conn, now=now + 10_000, retention=20.0)
    assert [r.revision for r in all_rollouts(conn)] == revisions[-1:]  # current is never pruned
