"""Durable fleet rollout state: ``rollouts.sqlite3`` in the bridge's state directory.

Its own file, beside the outbox, because it is state rather than a queue: the latest report of
every applier object per cluster, the rollouts derived from them, which exporter shards have
reported, and the commit statuses posted and still to post. Every write is one transaction
(WAL, ``synchronous=FULL``), committed before the exporter's POST is acknowledged, so a
``kill -9`` of the bridge loses nothing an exporter was told is stored. One thread owns the
connection; callers await ``call``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from notifiers.rollouts import (
    ClusterObject,
    Identity,
    Rollout,
    prunable,
    revisions_to_start,
    tally,
)

T = TypeVar("T")
FILENAME = "rollouts.sqlite3"
MAX_ROLLOUTS_PER_OBJECT = 20  # recent history kept per object identity, whatever the retention

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, cluster TEXT NOT NULL,
    applied TEXT NOT NULL, attempted TEXT NOT NULL, wanted TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT NOT NULL, message TEXT NOT NULL, applied_at REAL, source_url TEXT NOT NULL,
    observed_at REAL NOT NULL,
    origin_revision TEXT NOT NULL DEFAULT '', origin_of TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, namespace, name, cluster)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_cluster ON objects (cluster);
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, revision TEXT NOT NULL,
    source_url TEXT NOT NULL, started_at REAL NOT NULL, superseded_at REAL, success_at REAL,
    summary TEXT NOT NULL DEFAULT '{}',
    UNIQUE (kind, namespace, name, revision)
);
CREATE TABLE IF NOT EXISTS shards (
    shard INTEGER PRIMARY KEY, total INTEGER NOT NULL, synced INTEGER NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS status_posted (
    destination TEXT NOT NULL, sha TEXT NOT NULL, context TEXT NOT NULL,
    state TEXT NOT NULL, description TEXT NOT NULL, posts INTEGER NOT NULL,
    posted_at REAL NOT NULL,
    PRIMARY KEY (destination, sha, context)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chat_posted (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, revision TEXT NOT NULL,
    state TEXT NOT NULL, line TEXT NOT NULL, posted_at REAL NOT NULL,
    PRIMARY KEY (kind, namespace, name, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS status_queue (
    destination TEXT NOT NULL, sha TEXT NOT NULL, context TEXT NOT NULL,
    payload TEXT NOT NULL, attempts INTEGER NOT NULL, next_at REAL NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', last_code INTEGER,
    queued_at REAL NOT NULL,
    PRIMARY KEY (destination, sha, context)
) WITHOUT ROWID;
"""

_OBJECT_COLUMNS = (
    "cluster, kind, namespace, name, applied, attempted, wanted, status, reason, message, "
    "applied_at, source_url, observed_at, origin_revision, origin_of"
)
# columns added after the first release: (table, column, definition) for older state files
_ADDED_COLUMNS = (
    ("objects", "origin_revision", "TEXT NOT NULL DEFAULT ''"),
    ("objects", "origin_of", "TEXT NOT NULL DEFAULT ''"),
)


@dataclass(frozen=True, slots=True)
class ReportResult:
    touched: frozenset[Identity]  # objects whose rows changed
    started: tuple[Rollout, ...]  # rollouts begun by this report


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    for table, column, definition in _ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    return conn


def _object(row: Sequence[Any]) -> ClusterObject:
    return ClusterObject(*row)


def _rollout(row: Sequence[Any]) -> Rollout:
    return Rollout(
        id=row[0],
        kind=row[1],
        namespace=row[2],
        name=row[3],
        revision=row[4],
        source_url=row[5],
        started_at=row[6],
        superseded_at=row[7],
        success_at=row[8],
        summary=json.loads(row[9]),
    )


_ROLLOUT_COLUMNS = (
    "id, kind, namespace, name, revision, source_url, started_at, superseded_at, success_at, "
    "summary"
)


# ---- queries (plain functions over a connection, usable from any process) ----


def objects_of(conn: sqlite3.Connection, identity: Identity) -> list[ClusterObject]:
    rows = conn.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE kind=? AND namespace=? AND name=?",
        identity,
    )
    return [_object(r) for r in rows]


def rollouts_of(conn: sqlite3.Connection, identity: Identity) -> list[Rollout]:
    rows = conn.execute(
        f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE kind=? AND namespace=? AND name=? "
        "ORDER BY id",
        identity,
    )
    return [_rollout(r) for r in rows]


def all_rollouts(conn: sqlite3.Connection) -> list[Rollout]:
    rows = conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts ORDER BY id")
    return [_rollout(r) for r in rows]


def current_rollouts(conn: sqlite3.Connection) -> list[Rollout]:
    rows = conn.execute(
        f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE id IN "
        "(SELECT max(id) FROM rollouts GROUP BY kind, namespace, name) ORDER BY id"
    )
    return [_rollout(r) for r in rows]


def shards_complete(conn: sqlite3.Connection) -> bool:
    """Every shard of the newest sharding layout has reported a complete sync."""
    row = conn.execute("SELECT total FROM shards ORDER BY seen_at DESC LIMIT 1").fetchone()
    if row is None:
        return False
    total = int(row[0])
    synced = conn.execute(
        "SELECT count(*) FROM shards WHERE total=? AND synced=1 AND shard < ?", (total, total)
    ).fetchone()[0]
    return int(synced) == total


def apply_report(
    conn: sqlite3.Connection,
    *,
    shard: int,
    total_shards: int,
    synced: bool,
    clusters: Mapping[str, Sequence[ClusterObject]],
    now: float,
) -> ReportResult:
    """Replace the reported clusters' rows, then start and supersede rollouts; one transaction."""
    touched: set[Identity] = set()
    started: list[Rollout] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO shards (shard, total, synced, seen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (shard) DO UPDATE SET total=excluded.total, synced=excluded.synced, "
            "seen_at=excluded.seen_at",
            (shard, total_shards, int(synced), now),
        )
        for cluster, objects in clusters.items():
            old = {
                (r[1], r[2], r[3]): _object(r)
                for r in conn.execute(
                    f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE cluster=?", (cluster,)
                )
            }
            new = {o.identity: o for o in objects}
            for identity in old.keys() - new.keys():
                conn.execute(
                    "DELETE FROM objects WHERE kind=? AND namespace=? AND name=? AND cluster=?",
                    (*identity, cluster),
                )
                touched.add(identity)
            for identity, obj in new.items():
                before = old.get(identity)
                if before is not None and _same(before, obj):
                    continue  # keep observed_at: when it applied matters, not when re-reported
                conn.execute(
                    f"INSERT OR REPLACE INTO objects ({_OBJECT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cluster,
                        obj.kind,
                        obj.namespace,
                        obj.name,
                        obj.applied,
                        obj.attempted,
                        obj.wanted,
                        obj.status,
                        obj.reason,
                        obj.message,
                        obj.applied_at,
                        obj.source_url,
                        obj.observed_at,
                        obj.origin_revision,
                        obj.origin_of,
                    ),
                )
                touched.add(identity)
        complete = shards_complete(conn)
        for identity in sorted(touched):
            started.extend(_advance(conn, identity, now, complete))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ReportResult(frozenset(touched), tuple(started))


def _same(a: ClusterObject, b: ClusterObject) -> bool:
    return (
        a.applied,
        a.attempted,
        a.wanted,
        a.status,
        a.reason,
        a.message,
        a.applied_at,
        a.source_url,
        a.origin_revision,
        a.origin_of,
    ) == (
        b.applied,
        b.attempted,
        b.wanted,
        b.status,
        b.reason,
        b.message,
        b.applied_at,
        b.source_url,
        b.origin_revision,
        b.origin_of,
    )


def _advance(
    conn: sqlite3.Connection, identity: Identity, now: float, complete: bool
) -> list[Rollout]:
    """Start rollouts for new revisions of one object, supersede the old current one, and mark
    the first time the current one was applied everywhere."""
    objects = objects_of(conn, identity)
    existing = rollouts_of(conn, identity)
    new_revisions = revisions_to_start(
        objects, (r.revision for r in existing), has_rollout=bool(existing)
    )
    started: list[Rollout] = []
    current = existing[-1] if existing else None
    for revision in new_revisions:
        source_url = next((o.source_url for o in objects if o.source_url), "")
        if current is not None:
            summary = tally(current, objects, complete).as_dict()
            conn.execute(
                "UPDATE rollouts SET superseded_at=?, summary=? WHERE id=?",
                (now, json.dumps(summary, sort_keys=True), current.id),
            )
        cur = conn.execute(
            "INSERT INTO rollouts (kind, namespace, name, revision, source_url, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*identity, revision, source_url, now),
        )
        current = Rollout(
            id=int(cur.lastrowid or 0),
            kind=identity[0],
            namespace=identity[1],
            name=identity[2],
            revision=revision,
            started_at=now,
            source_url=source_url,
        )
        started.append(current)
    if current is not None and current.success_at is None and objects:
        t = tally(current, objects, complete)
        if t.complete and t.applied == t.total:
            conn.execute("UPDATE rollouts SET success_at=? WHERE id=?", (now, current.id))
    return started


def prune_rollouts(conn: sqlite3.Connection, now: float, retention: float) -> int:
    """Delete finished rollouts past the retention and history beyond the per-object cap."""
    rollouts = all_rollouts(conn)
    current = {r.id for r in current_rollouts(conn)}
    doomed = set(prunable(rollouts, current, now, retention))
    by_object: dict[Identity, list[Rollout]] = {}
    for r in rollouts:
        by_object.setdefault(r.identity, []).append(r)
    for items in by_object.values():
        for r in items[:-MAX_ROLLOUTS_PER_OBJECT]:
            doomed.add(r.id)
    # A current rollout whose object no cluster runs any more is finished too.
    for r in rollouts:
        if r.id in current and not objects_of(conn, r.identity):
            ended = r.superseded_at or r.success_at or r.started_at
            if now - ended >= retention:
                doomed.add(r.id)
    if doomed:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM rollouts WHERE id=?", [(i,) for i in sorted(doomed)])
        conn.execute(
            "DELETE FROM chat_posted WHERE NOT EXISTS (SELECT 1 FROM rollouts r WHERE "
            "r.kind=chat_posted.kind AND r.namespace=chat_posted.namespace AND "
            "r.name=chat_posted.name AND r.revision=chat_posted.revision)"
        )
        conn.execute("COMMIT")
    return len(doomed)


class RolloutStore:
    """The connection, owned by one worker thread; every method returns after commit."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fluxwatch-rollouts")
        self._conn = self._executor.submit(connect, self.path).result()

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._executor is not None, "store not open"
        assert self._conn is not None, "store not open"
        conn = self._conn
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, conn)

    def close(self) -> None:
        if self._executor is not None:
            if self._conn is not None:
                self._executor.submit(self._conn.close).result()
            self._executor.shutdown(wait=True)
        self._executor = None
        self._conn = None

    async def report(
        self,
        *,
        shard: int,
        total_shards: int,
        synced: bool,
        clusters: Mapping[str, Sequence[ClusterObject]],
        now: float,
    ) -> ReportResult:
        return await self.call(
            lambda conn: apply_report(
                conn,
                shard=shard,
                total_shards=total_shards,
                synced=synced,
                clusters=clusters,
                now=now,
            )
        )


def open_readonly(state_dir: Path) -> sqlite3.Connection:
    """For ``fluxwatch rollouts --state-dir``: safe while the bridge writes (WAL)."""
    path = state_dir / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no rollout state (has the bridge run here?)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
