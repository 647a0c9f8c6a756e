"""A single-node bridge's ``rollouts.sqlite3`` moves into PostgreSQL with its outbox
(``fluxwatch outbox migrate --from-sqlite``), and ``fluxwatch rollouts --config`` reads the
shared state there: the same rows as before the move, statuses already posted not posted again,
and new rollouts numbered after the moved ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.cli import main
from notifiers import store as outbox_store
from notifiers.pgstore import PostgresSettings
from notifiers.rolloutpg import PostgresRolloutStore
from notifiers.rollouts import ClusterObject
from notifiers.rolloutstore import RolloutConn, SqliteRolloutStore, rollouts_of

IDENTITY = ("Kustomization", "apps", "podinfo")
REV = {name: f"main@sha1:{name * 40}" for name in "abc"}


def objects(cluster: str, applied: str, wanted: str = "") -> list[ClusterObject]:
    return [
        ClusterObject(
            cluster=cluster,
            kind=IDENTITY[0],
            namespace=IDENTITY[1],
            name=IDENTITY[2],
            applied=applied,
            attempted=wanted or applied,
            wanted=wanted,
            status="ready",
            source_url="https://github.com/acme/podinfo.git",
            observed_at=100.0,
        )
    ]


async def report(
    store: SqliteRolloutStore | PostgresRolloutStore,
    clusters: dict[str, list[ClusterObject]],
    now: float,
) -> None:
    await store.report(shard=0, total_shards=1, synced=True, clusters=clusters, now=now)


def posted(conn: RolloutConn) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT destination, sha, context, state, description, posts FROM status_posted"
        )
    ]


def rows_without_age(out: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(out)
    return [{k: v for k, v in r.items() if k not in ("age_seconds", "slowest")} for r in rows]


async def test_rollout_state_moves_with_the_outbox_and_the_cli_reads_it(
    tmp_path: Path, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    outbox_store.connect(state / outbox_store.DB_NAME).close()  # an empty single-node outbox
    single = SqliteRolloutStore(state)
    single.open()
    try:
        await report(single, {c: objects(c, REV["a"]) for c in ("c1", "c2", "c3")}, 100.0)
        await report(
            single,
            {"c1": objects("c1", REV["b"]), "c2": objects("c2", REV["a"], wanted=REV["b"])},
            200.0,
        )
        await single.call(
            lambda conn: conn.execute(
                "INSERT INTO status_posted VALUES ('github', ?, 'fleet', 'pending', "
                "'applied on 1/3 clusters', 4, 200.0)",
                ("b" * 40,),
            )
        )
        before_posted = await single.call(posted)
    finally:
        single.close()
    assert main(["rollouts", "--state-dir", str(state), "--json"]) == 0
    before = rows_without_age(capsys.readouterr().out)
    assert [(r["revision"], r["applied"], r["total"]) for r in before] == [
        (REV["b"], 1, 3),
        (REV["a"], 2, 3),  # its tally when superseded
    ]

    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(postgres_dsn)
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(
        json.dumps(
            {
                "bridge": {
                    "state_dir": str(tmp_path / "unused-state"),
                    "outbox": {"postgres": {"dsn_file": str(dsn_file)}},
                }
            }
        )
    )
    assert main(["rollouts", "--config", str(config)]) == 2  # no bridge ran on it yet
    assert "no rollout state in the PostgreSQL database" in capsys.readouterr().err

    migrate = ["outbox", "migrate", "--config", str(config), "--from-sqlite", str(state)]
    assert main(migrate) == 0
    out = capsys.readouterr().out
    assert "copied the rollout state into PostgreSQL: objects 3, rollouts 2, shards 1" in out
    assert main(migrate) == 1  # never twice into the same database
    assert "not empty" in capsys.readouterr().err

    assert main(["rollouts", "--config", str(config), "--json"]) == 0
    assert rows_without_age(capsys.readouterr().out) == before
    assert main(["rollouts", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "Kustomization apps/podinfo" in table
    assert "1/3" in table

    shared = PostgresRolloutStore(PostgresSettings(dsn_file=dsn_file))
    shared.open()
    try:
        assert await shared.call(posted) == before_posted  # not posted again after the move
        await report(shared, {"c3": objects("c3", REV["a"], wanted=REV["c"])}, 300.0)
        ids = [r.id for r in await shared.call(lambda conn: rollouts_of(conn, IDENTITY))]
    finally:
        shared.close()
    assert len(ids) == 3
    assert ids[-1] > max(ids[:-1])  # numbered after the moved rollouts
