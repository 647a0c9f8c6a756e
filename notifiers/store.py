"""The outbox's storage: schema, connection, row encoding and plain queries over a connection.

Everything here is a function of a ``sqlite3.Connection``: the writer thread (``notifiers.outbox``)
calls them inside its transactions, and ``fluxwatch outbox`` and maintenance call them over
connections of their own. Policy (de-duplication, grouping, retries) lives elsewhere;
``SqliteStore`` is the ``notifiers.storeapi.OutboxStore`` the writer talks to.

Tables: ``events`` (normalised event JSON and the raw payload), ``deliveries`` (one per event
and destination), ``notifications`` (what a destination receives; status pending, delivered or
dead), ``dedup_state`` and ``meta`` (the snapshot and the last event it covers), ``groups``
(last flush per group), ``thread_anchors`` (where each incident's chat thread lives, written
with the delivery that created or moved it).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from notifiers import maintenance, storeapi
from notifiers.dedup import DedupState
from notifiers.model import Notification, ThreadAnchor
from notifiers.storeapi import (
    NOTIFICATION_COLUMNS,
    DedupRow,
    DeliveryRow,
    notification_from_row,
)

DB_NAME = "outbox.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    received_at REAL NOT NULL,
    source TEXT NOT NULL,
    object_key TEXT NOT NULL,
    decision TEXT NOT NULL,
    body TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    destination TEXT NOT NULL,
    group_key TEXT NOT NULL,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL,
    group_interval REAL NOT NULL,
    notification_id INTEGER
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    group_key TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_attempt_at REAL,
    last_error TEXT NOT NULL DEFAULT '',
    last_status_code INTEGER,
    delivered_at REAL,
    total_events INTEGER NOT NULL,
    delivery_ids TEXT NOT NULL,
    object_keys TEXT NOT NULL,
    payload TEXT NOT NULL,
    clusters TEXT NOT NULL DEFAULT '[]',
    requeued INTEGER NOT NULL DEFAULT 0,
    retry_since REAL
);
CREATE INDEX IF NOT EXISTS notifications_by_status ON notifications(status, destination);
CREATE TABLE IF NOT EXISTS dedup_state (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    revision TEXT NOT NULL,
    at REAL NOT NULL,
    was_bad INTEGER NOT NULL,
    applied_revision TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS thread_anchors (
    destination TEXT NOT NULL,
    incident TEXT NOT NULL,
    channel TEXT NOT NULL,
    ts TEXT NOT NULL,
    opened_at REAL NOT NULL,
    state TEXT NOT NULL,
    closed INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (destination, incident)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
    destination TEXT NOT NULL,
    group_key TEXT NOT NULL,
    last_flush_at REAL NOT NULL,
    PRIMARY KEY (destination, group_key)
) WITHOUT ROWID;
"""


_EVENT_COLUMNS = "seq, id, received_at, source, object_key, decision, body, raw"
_DELIVERY_COLUMNS = (
    "id, event_seq, destination, group_key, route, status, created_at, due_at, group_interval"
)
_DEDUP_COLUMNS = "key, status, reason, revision, at, was_bad, applied_revision"
_DEDUP_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in _DEDUP_COLUMNS.split(", ")[1:])
UPSERT_DEDUP = f"INSERT INTO dedup_state ({_DEDUP_COLUMNS})"
UPSERT_DEDUP_TAIL = f"ON CONFLICT(key) DO UPDATE SET {_DEDUP_UPDATE}"


def _from_json(head: str, width: int, source: str, tail: str = "") -> str:
    select = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))
    where = " WHERE true " + tail if tail else ""
    return f"{head} SELECT {select} FROM json_each({source}){where}"


# Intake rows go through this view: one multi-row INSERT writes a whole batch of events, and
# the trigger adds each event's delivery rows from its JSON ``targets`` (see Outbox._process).
INGEST_TRIGGER = f"""
CREATE VIEW IF NOT EXISTS ingest_events AS
    SELECT {_EVENT_COLUMNS}, '' AS targets FROM events;
CREATE TRIGGER IF NOT EXISTS ingest_events_insert INSTEAD OF INSERT ON ingest_events BEGIN
    INSERT INTO events ({_EVENT_COLUMNS}) VALUES
        (NEW.seq, NEW.id, NEW.received_at, NEW.source, NEW.object_key, NEW.decision, NEW.body,
         NEW.raw);
    INSERT INTO deliveries ({_DELIVERY_COLUMNS})
        SELECT json_extract(value, '$[0]'), NEW.seq, json_extract(value, '$[1]'),
               json_extract(value, '$[2]'), json_extract(value, '$[3]'), 'pending',
               json_extract(value, '$[4]'), json_extract(value, '$[5]'),
               json_extract(value, '$[6]')
        FROM json_each(NEW.targets);
END;
"""
INGEST_CHUNK = 1000  # rows per statement: 9,000 parameters, under SQLite's 32,766


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def compact_json(value: Any, *floats: float | None) -> str:
    """JSON text of a stored row's value; ``floats`` are every float inside ``value``.

    orjson encodes an event ten times faster than ``json`` (0.5 µs against 6 µs here), and this
    runs in the writer thread holding the GIL that the event loop needs, once or twice per
    event. What is stored reads back identically: where orjson would differ (NaN and infinities,
    which it writes as null) or refuses (a lone surrogate, an integer beyond 64 bits, a key that
    is not a string), the value goes through ``json`` as before. Only the text differs: UTF-8
    instead of ``\\u`` escapes, which SQLite and every reader parse alike.
    """
    if all(f is None or math.isfinite(f) for f in floats):
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass
    return _COMPACT(value)


def write_ingest_rows(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert intake rows with one multi-row statement per chunk (native parameters).

    ``executemany`` would step once per row and release the GIL around every step; with the
    event loop busy on the other side, each hand-back can wait. One statement is one step.
    """
    for start in range(0, len(rows), INGEST_CHUNK):
        chunk = rows[start : start + INGEST_CHUNK]
        marks = ",".join(["(?,?,?,?,?,?,?,?,?)"] * len(chunk))
        params = [value for row in chunk for value in row]
        sql = f"INSERT INTO ingest_events ({_EVENT_COLUMNS}, targets) VALUES {marks}"
        conn.execute(sql, params)


def connect(path: Path, *, synchronous: str = "full") -> sqlite3.Connection:
    """A connection with the bridge's pragmas; also used by ``fluxwatch outbox``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30.0, cached_statements=512
    )
    # Larger pages mean fewer WAL frames, hence fewer write() calls, per group commit.
    conn.execute("PRAGMA page_size=16384")  # only takes effect when the file is created
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(SCHEMA + INGEST_TRIGGER)
    _add_missing_columns(conn)
    return conn


# Columns added after the first release, for outboxes created before them.
_ADDED_COLUMNS: dict[str, dict[str, str]] = {"notifications": {"retry_since": "REAL"}}


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")


def load_pending(
    conn: sqlite3.Connection,
    destination: str,
    *,
    after: int,
    exclude: Sequence[int],
    limit: int,
) -> list[Notification]:
    """The next ``limit`` pending notifications of ``destination`` above id ``after``, in id
    order, leaving out those already held (``exclude``)."""
    return load_notifications(
        conn,
        "status = 'pending' AND destination = ? AND id > ? "
        "AND id NOT IN (SELECT value FROM json_each(?))",
        (destination, after, json.dumps(list(exclude))),
        limit,
    )


def load_notifications(
    conn: sqlite3.Connection, where: str, params: Sequence[Any] = (), limit: int | None = None
) -> list[Notification]:
    rows = conn.execute(
        f"SELECT {NOTIFICATION_COLUMNS} FROM notifications "
        f"WHERE {where} ORDER BY id" + ("" if limit is None else f" LIMIT {int(limit)}"),
        params,
    ).fetchall()
    return [notification_from_row(r) for r in rows]


def insert_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """Insert many rows (the de-duplication snapshot) with one statement over ``json_each``.

    ``executemany`` steps the statement once per row and releases the GIL around every step; with
    the event loop busy on the other side, each hand-back can wait for the interpreter's switch
    interval, so a batch of N rows costs N round trips. One statement costs one.
    """
    if not rows:
        return
    conn.execute(_from_json(head, len(rows[0]), "?", tail), (json.dumps(rows),))


def write_thread_anchor(conn: sqlite3.Connection, anchor: ThreadAnchor, now: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO thread_anchors (destination, incident, channel, ts, opened_at, "
        "state, closed, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            anchor.destination,
            anchor.incident,
            anchor.channel,
            anchor.ts,
            anchor.opened_at,
            anchor.state,
            int(anchor.closed),
            now,
        ),
    )


def read_thread_anchor(
    conn: sqlite3.Connection, destination: str, incident: str
) -> ThreadAnchor | None:
    row = conn.execute(
        "SELECT channel, ts, opened_at, state, closed FROM thread_anchors "
        "WHERE destination = ? AND incident = ?",
        (destination, incident),
    ).fetchone()
    if row is None:
        return None
    return ThreadAnchor(destination, incident, row[0], row[1], row[2], row[3], bool(row[4]))


class SqliteStore:
    """The embedded outbox: one file in the state directory, one writing process."""

    def __init__(self, state_dir: Path, *, synchronous: str = "full") -> None:
        self.path = state_dir / DB_NAME
        self.description = str(self.path)
        self.synchronous = synchronous
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "the store is not open"
        return self._conn

    def open(self) -> None:
        self._conn = connect(self.path, synchronous=self.synchronous)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reconnect(self) -> None:
        self.close()
        self.open()

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def write_ingest_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        write_ingest_rows(self.conn, rows)

    def load_dedup(self) -> dict[str, DedupState]:
        return storeapi.load_dedup(self.conn)

    def dedup_seq(self) -> int:
        return storeapi.dedup_seq(self.conn)

    def events_since(self, seq: int) -> Iterable[tuple[str, float]]:
        return self.conn.execute(
            "SELECT body, received_at FROM events WHERE seq > ? ORDER BY seq", (seq,)
        )

    def group_flushes(self) -> dict[tuple[str, str], float]:
        return storeapi.group_flushes(self.conn)

    def next_ids(self) -> tuple[int, int, int]:
        conn = self.conn
        delivery = conn.execute("SELECT max(id) FROM deliveries").fetchone()[0] or 0
        notification = conn.execute("SELECT max(id) FROM notifications").fetchone()[0] or 0
        seq = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        return delivery + 1, notification + 1, seq + 1

    def waiting_deliveries(self) -> list[DeliveryRow]:
        return storeapi.waiting_deliveries(self.conn)

    def delivery_route(self, delivery_id: int) -> str:
        row = self.conn.execute(
            "SELECT route FROM deliveries WHERE id = ?", (delivery_id,)
        ).fetchone()
        return str(row[0])

    def object_events_since(self, object_key: str, since: float) -> list[tuple[float, str]]:
        return self.conn.execute(
            "SELECT received_at, body FROM events WHERE object_key = ? "
            "AND received_at >= ? ORDER BY seq",
            (object_key, since),
        ).fetchall()

    def pending_notification_count(self) -> int:
        return int(
            self.conn.execute(
                "SELECT count(*) FROM notifications WHERE status = 'pending'"
            ).fetchone()[0]
        )

    def clear_requeued(self) -> None:
        self.conn.execute("UPDATE notifications SET requeued = 0 WHERE requeued = 1")

    def write_dedup_snapshot(self, rows: Sequence[DedupRow], seq: int) -> None:
        insert_rows(self.conn, UPSERT_DEDUP, rows, UPSERT_DEDUP_TAIL)
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('dedup_seq', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (seq,),
        )

    def cancel_deliveries(self, ids: Sequence[int]) -> None:
        self.conn.executemany(
            "UPDATE deliveries SET status = 'cancelled' WHERE id = ?", [(i,) for i in ids]
        )

    def event_bodies(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        bodies: dict[int, dict[str, Any]] = {}
        for start in range(0, len(seqs), 500):
            chunk = list(seqs[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for seq, body in self.conn.execute(
                f"SELECT seq, body FROM events WHERE seq IN ({marks})", chunk
            ):
                bodies[seq] = json.loads(body)
        return bodies

    def event_summaries(self, seqs: Sequence[int]) -> list[tuple[str, str, str]]:
        found: list[tuple[str, str, str]] = []
        for start in range(0, len(seqs), 500):
            chunk = list(seqs[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.extend(
                self.conn.execute(
                    "SELECT id, object_key, json_extract(body, '$.cluster') FROM events "
                    f"WHERE seq IN ({marks})",
                    chunk,
                )
            )
        return found

    def insert_notification(
        self, notification: Notification, delivery_ids: Sequence[int], payload: str
    ) -> None:
        n = notification
        self.conn.execute(
            "INSERT INTO notifications (id, destination, group_key, idempotency_key, status, "
            "created_at, attempts, next_attempt_at, total_events, delivery_ids, object_keys, "
            "payload, clusters) "
            "VALUES (?, ?, ?, ?, 'pending', ?, 0, ?, ?, ?, ?, ?, ?)",
            (
                n.id,
                n.destination,
                n.group_key,
                n.idempotency_key,
                n.created_at,
                n.next_attempt_at,
                n.total_events,
                json.dumps(list(delivery_ids)),
                json.dumps(sorted(n.object_keys)),
                payload,
                json.dumps(list(n.clusters)),
            ),
        )
        self.conn.executemany(
            "UPDATE deliveries SET status = 'batched', notification_id = ? WHERE id = ?",
            [(n.id, did) for did in delivery_ids],
        )
        self.conn.execute(
            "INSERT OR REPLACE INTO groups (destination, group_key, last_flush_at) "
            "VALUES (?, ?, ?)",
            (n.destination, n.group_key, n.created_at),
        )

    def record_attempt(
        self,
        notification_id: int,
        status: str,
        attempts: int,
        next_attempt_at: float,
        error: str,
        status_code: int | None,
        at: float,
        anchor: ThreadAnchor | None,
    ) -> None:
        conn = self.conn
        conn.execute(
            "UPDATE notifications SET status = ?, attempts = ?, next_attempt_at = ?, "
            "last_attempt_at = ?, last_error = ?, last_status_code = ?, "
            "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END WHERE id = ?",
            (
                status,
                attempts,
                next_attempt_at,
                at,
                error,
                status_code,
                status,
                at,
                notification_id,
            ),
        )
        if anchor is not None and status == "delivered":
            write_thread_anchor(conn, anchor, at)
        if status in ("delivered", "dead"):
            row = conn.execute(
                "SELECT delivery_ids FROM notifications WHERE id = ?", (notification_id,)
            ).fetchone()
            if row is not None:
                conn.executemany(
                    "UPDATE deliveries SET status = ? WHERE id = ?",
                    [(status, did) for did in json.loads(row[0])],
                )

    def load_pending(
        self, destination: str, *, after: int, exclude: Sequence[int], limit: int
    ) -> list[Notification]:
        return load_pending(self.conn, destination, after=after, exclude=exclude, limit=limit)

    def read_thread_anchor(self, destination: str, incident: str) -> ThreadAnchor | None:
        return read_thread_anchor(self.conn, destination, incident)

    def take_requeued(self) -> dict[str, list[int]]:
        return maintenance.take_requeued(self.conn)

    def pending_counts(self) -> dict[str, tuple[int, float]]:
        return maintenance.pending_counts(self.conn)

    def dead_counts(self) -> dict[str, int]:
        return maintenance.dead_counts(self.conn)

    def prune(
        self, *, now: float, retention: float, dead_retention: float, dedup_window: float
    ) -> dict[str, int]:
        return maintenance.prune(
            self.conn,
            now=now,
            retention=retention,
            dead_retention=dead_retention,
            dedup_window=dedup_window,
        )

    def replay(self, ids: Iterable[int], *, now: float) -> int:
        return maintenance.replay(self.conn, ids, now=now)
