"""Durable fleet rollout state, and the seam between it and the database that keeps it.

The state is the latest report of every applier object per cluster, the rollouts derived from
them, which exporter shards have reported, and the commit statuses posted and still to post.
Every write is one transaction, committed before the exporter's POST is acknowledged, so a
``kill -9`` of the bridge loses nothing an exporter was told is stored.

Two stores keep it, behind ``RolloutStore``: ``SqliteRolloutStore`` (``rollouts.sqlite3`` in the
state directory, its own file beside the outbox because it is state rather than a queue; WAL,
``synchronous=FULL``) and ``notifiers.rolloutpg.PostgresRolloutStore`` (the outbox's PostgreSQL
database, shared by every bridge replica). The queries below are written once, with ``?``
placeholders, and run on either; a write transaction starts with ``BEGIN IMMEDIATE``, which
makes it the only writer of the rollout state until it commits, in both databases. One thread
owns each store's connection; callers await ``call``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from notifiers.rollouts import (
    ClusterObject,
    Identity,
    Rollout,
    prunable,
    revisions_to_start,
    tally,
)
from notifiers.storeapi import Rows

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
_OBJECT_UPDATE = ", ".join(
    f"{c}=excluded.{c}"
    for c in _OBJECT_COLUMNS.split(", ")
    if c not in ("cluster", "kind", "namespace", "name")
)
# columns added after the first release: (table, column, definition) for older state files
_ADDED_COLUMNS = (
    ("objects", "origin_revision", "TEXT NOT NULL DEFAULT ''"),
    ("objects", "origin_of", "TEXT NOT NULL DEFAULT ''"),
)


class RolloutConn(Protocol):
    """A connection to either database, taking the ``?``-placeholder SQL of this module."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Rows: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


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


def objects_of(conn: RolloutConn, identity: Identity) -> list[ClusterObject]:
    rows = conn.execute(
        f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE kind=? AND namespace=? AND name=?",
        identity,
    )
    return [_object(r) for r in rows]


def rollouts_of(conn: RolloutConn, identity: Identity) -> list[Rollout]:
    rows = conn.execute(
        f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE kind=? AND namespace=? AND name=? "
        "ORDER BY id",
        identity,
    )
    return [_rollout(r) for r in rows]


def all_rollouts(conn: RolloutConn) -> list[Rollout]:
    rows = conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts ORDER BY id")
    return [_rollout(r) for r in rows]


def current_rollouts(conn: RolloutConn) -> list[Rollout]:
    rows = conn.execute(
        f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE id IN "
        "(SELECT max(id) FROM rollouts GROUP BY kind, namespace, name) ORDER BY id"
    )
    return [_rollout(r) for r in rows]


def shards_complete(conn: RolloutConn) -> bool:
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
    conn: RolloutConn,
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
        gone: list[tuple[str, ...]] = []
        changed: list[tuple[Any, ...]] = []
        stored = _objects_of_clusters(conn, list(clusters))
        for cluster, objects in clusters.items():
            old = stored.get(cluster, {})
            new = {o.identity: o for o in objects}
            for identity in old.keys() - new.keys():
                gone.append((*identity, cluster))
                touched.add(identity)
            for identity, obj in new.items():
                before = old.get(identity)
                if before is not None and _same(before, obj):
                    continue  # keep observed_at: when it applied matters, not when re-reported
                changed.append(
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
                    )
                )
                touched.add(identity)
        # in batches: one round trip for many rows on PostgreSQL
        if gone:
            conn.executemany(
                "DELETE FROM objects WHERE kind=? AND namespace=? AND name=? AND cluster=?", gone
            )
        if changed:
            conn.executemany(
                f"INSERT INTO objects ({_OBJECT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (kind, namespace, name, cluster) DO UPDATE SET {_OBJECT_UPDATE}",
                changed,
            )
        complete = shards_complete(conn)
        for identity in sorted(touched):
            started.extend(_advance(conn, identity, now, complete))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ReportResult(frozenset(touched), tuple(started))


def _objects_of_clusters(
    conn: RolloutConn, clusters: Sequence[str], chunk: int = 500
) -> dict[str, dict[Identity, ClusterObject]]:
    """The stored objects of ``clusters``, a few queries for a whole fleet's report."""
    out: dict[str, dict[Identity, ClusterObject]] = {}
    for start in range(0, len(clusters), chunk):
        some = clusters[start : start + chunk]
        marks = ", ".join("?" * len(some))
        for r in conn.execute(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE cluster IN ({marks})", some
        ):
            obj = _object(r)
            out.setdefault(obj.cluster, {})[obj.identity] = obj
    return out


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


def _advance(conn: RolloutConn, identity: Identity, now: float, complete: bool) -> list[Rollout]:
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
        row = conn.execute(
            "INSERT INTO rollouts (kind, namespace, name, revision, source_url, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (*identity, revision, source_url, now),
        ).fetchone()
        current = Rollout(
            id=int(row[0]),
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


def prune_rollouts(conn: RolloutConn, now: float, retention: float) -> int:
    """Delete finished rollouts past the retention and history beyond the per-object cap.

    Read and delete in one write transaction: with replicas, a report stored by another one
    between the two must not make a rollout this one judged finished current again."""
    conn.execute("BEGIN IMMEDIATE")
    try:
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
            conn.executemany("DELETE FROM rollouts WHERE id=?", [(i,) for i in sorted(doomed)])
            conn.execute(
                "DELETE FROM chat_posted WHERE NOT EXISTS (SELECT 1 FROM rollouts r WHERE "
                "r.kind=chat_posted.kind AND r.namespace=chat_posted.namespace AND "
                "r.name=chat_posted.name AND r.revision=chat_posted.revision)"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(doomed)


class RolloutStore:
    """Where the rollout state lives: one connection owned by one worker thread; every method
    returns after commit. Subclasses open the connection and say how work is claimed."""

    description = "the rollout state"
    # True when other bridge replicas read and write the same state at the same time
    shared = False

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._conn: RolloutConn | None = None

    def _connect(self) -> RolloutConn:
        raise NotImplementedError

    def _close(self, conn: RolloutConn) -> None:
        raise NotImplementedError

    def _run(self, fn: Callable[[RolloutConn], T]) -> T:
        assert self._conn is not None, "store not open"
        return fn(self._conn)

    def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fluxwatch-rollouts")
        try:
            self._conn = self._executor.submit(self._connect).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def call(self, fn: Callable[[RolloutConn], T]) -> T:
        assert self._executor is not None, "store not open"
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn)

    def close(self) -> None:
        if self._executor is not None:
            if self._conn is not None:
                self._executor.submit(self._close, self._conn).result()
            self._executor.shutdown(wait=True)
        self._executor = None
        self._conn = None

    def try_claim(self, conn: RolloutConn, key: str) -> bool:
        """Become the one replica sending what ``key`` names (a commit status, a chat line)
        until ``release``; False while another replica holds it. Alone, always True."""
        return True

    def release(self, conn: RolloutConn, keys: Sequence[str]) -> None:
        """Give up the claims on ``keys``."""

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


class SqliteRolloutStore(RolloutStore):
    """``rollouts.sqlite3`` in the state directory: one bridge process, zero setup."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__()
        self.path = state_dir / FILENAME
        self.description = f"the rollout state {self.path}"

    def _connect(self) -> RolloutConn:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return connect(self.path)

    def _close(self, conn: RolloutConn) -> None:
        assert isinstance(conn, sqlite3.Connection)
        conn.close()


def open_readonly(state_dir: Path) -> sqlite3.Connection:
    """For ``fluxwatch rollouts --state-dir``: safe while the bridge writes (WAL)."""
    path = state_dir / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: no rollout state (has the bridge run here?)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
