"""The outbox on PostgreSQL: the same rows as ``notifiers.store`` in a database the platform
team already operates, so the bridge's state survives the loss of its node and volume, and
several bridge replicas can share it (``notifiers.sharedoutbox``, ``notifiers.pgshared``).

psycopg 3, synchronous: the outbox's writer is a thread that batches every operation waiting on
its queue into one transaction (group commit), so a blocking driver fits it directly, one
connection per replica; asyncpg would need the event loop the intake answers on, or a loop of
its own in that thread, and a pool buys nothing for a single writer thread.

The schema lives in ``notifiers.pgschema``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from notifiers import pgshared, storeapi
from notifiers.dedup import DedupState
from notifiers.model import Notification, ThreadAnchor
from notifiers.pgschema import (
    PostgresError as PostgresError,  # raised to the callers of this module
)
from notifiers.pgschema import adopt_rows, migrate, refuse_single_writer
from notifiers.storeapi import (
    NOTIFICATION_COLUMNS,
    DedupRow,
    DeliveryRow,
    notification_from_row,
)


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """Where the outbox database is: a DSN read from a file or an environment variable (it
    usually holds a password), and TLS options that override the DSN's."""

    dsn_file: Path | None = None
    dsn_env: str = ""
    sslmode: str = ""
    sslrootcert: Path | None = None
    sslcert: Path | None = None
    sslkey: Path | None = None
    connect_timeout: float = 5.0
    # How long a replica's claim on a destination lasts unless renewed (every third of it): a
    # replica that dies hands its destinations to the others after at most this long.
    lease: float = 15.0

    def dsn(self) -> str:
        if self.dsn_file is not None:
            try:
                return self.dsn_file.read_text().strip()
            except OSError as exc:
                raise PostgresError(
                    f"cannot read the DSN file {self.dsn_file}: {exc.strerror}"
                ) from None
        value = os.environ.get(self.dsn_env, "").strip()
        if not value:
            raise PostgresError(f"environment variable {self.dsn_env} holds no DSN")
        return value

    def connect_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"connect_timeout": max(1, int(self.connect_timeout))}
        for name in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
            value = getattr(self, name)
            if value:
                args[name] = str(value)
        return args


def _why(exc: BaseException) -> str:
    """The server's or driver's reason in one line; psycopg never puts the password in it."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def connect(settings: PostgresSettings) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(settings.dsn(), autocommit=True, **settings.connect_args())
    except psycopg.Error as exc:
        raise PostgresError(f"cannot connect to PostgreSQL: {_why(exc)}") from None


class PostgresStore:
    """``notifiers.storeapi.OutboxStore`` on one PostgreSQL connection of the writer thread."""

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.description = "the PostgreSQL outbox"
        self._conn: psycopg.Connection[Any] | None = None
        self._in_tx = False

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None, "the store is not open"
        return self._conn

    def open(self) -> None:
        conn = connect(self.settings)
        try:
            refuse_single_writer(conn)
            migrate(conn)
        except psycopg.Error as exc:
            conn.close()
            raise PostgresError(f"cannot prepare the PostgreSQL outbox: {_why(exc)}") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def reconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._in_tx = False
        self.open()

    def begin(self) -> None:
        self.conn.execute("BEGIN")
        self._in_tx = True

    def commit(self) -> None:
        self._in_tx = False
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self._in_tx = False
        if self._conn is not None and not self._conn.closed:
            self._conn.execute("ROLLBACK")

    def write_ingest_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if not self._in_tx:  # one atomic write, like SQLite's single statement
            with self.conn.transaction():
                pgshared.write_intake(self.conn, rows, [], [], commit=False)
        else:
            pgshared.write_intake(self.conn, rows, [], [], commit=False)

    def load_dedup(self) -> dict[str, DedupState]:
        return storeapi.load_dedup(self.conn)

    def dedup_seq(self) -> int:
        return storeapi.dedup_seq(self.conn)

    def events_since(self, seq: int) -> Iterable[tuple[str, float]]:
        return self.conn.execute(
            "SELECT body, received_at FROM events WHERE seq > %s ORDER BY seq", (seq,)
        ).fetchall()

    def group_flushes(self) -> dict[tuple[str, str], float]:
        return storeapi.group_flushes(self.conn)

    def next_ids(self) -> tuple[int, int, int]:
        row = self.conn.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM deliveries), "
            "(SELECT coalesce(max(id), 0) FROM notifications), "
            "(SELECT coalesce(max(seq), 0) FROM events)"
        ).fetchone()
        assert row is not None
        return int(row[0]) + 1, int(row[1]) + 1, int(row[2]) + 1

    def waiting_deliveries(self) -> list[DeliveryRow]:
        return storeapi.waiting_deliveries(self.conn)

    def delivery_route(self, delivery_id: int) -> str:
        row = self.conn.execute(
            "SELECT route FROM deliveries WHERE id = %s", (delivery_id,)
        ).fetchone()
        assert row is not None
        return str(row[0])

    def object_events_since(self, object_key: str, since: float) -> list[tuple[float, str]]:
        return self.conn.execute(
            "SELECT received_at, body FROM events WHERE object_key = %s "
            "AND received_at >= %s ORDER BY seq",
            (object_key, since),
        ).fetchall()

    def pending_notification_count(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM notifications WHERE status = 'pending'"
        ).fetchone()
        return int(row[0]) if row else 0

    def clear_requeued(self) -> None:
        """Nothing: a replay flag is taken by ``take_requeued`` (of any replica), which tells
        the destination's holder; clearing it at one replica's start would hide it from the
        holder."""

    def write_dedup_snapshot(self, rows: Sequence[DedupRow], seq: int) -> None:
        pgshared.write_dedup(self.conn, rows)
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('dedup_seq', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (seq,),
        )

    def cancel_deliveries(self, ids: Sequence[int]) -> None:
        self.conn.execute(
            "UPDATE deliveries SET status = 'cancelled' WHERE id = ANY(%s)", (list(ids),)
        )

    def event_bodies(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        return {
            int(seq): json.loads(body)
            for seq, body in self.conn.execute(
                "SELECT seq, body FROM events WHERE seq = ANY(%s)", (list(seqs),)
            )
        }

    def event_summaries(self, seqs: Sequence[int]) -> list[tuple[str, str, str]]:
        return [
            (eid, okey, json.loads(body).get("cluster", ""))
            for eid, okey, body in self.conn.execute(
                "SELECT id, object_key, body FROM events WHERE seq = ANY(%s)", (list(seqs),)
            )
        ]

    def insert_notification(
        self, notification: Notification, delivery_ids: Sequence[int], payload: str
    ) -> None:
        n = notification
        conn = self.conn
        conn.execute(
            "INSERT INTO notifications (id, destination, group_key, idempotency_key, status, "
            "created_at, attempts, next_attempt_at, total_events, delivery_ids, object_keys, "
            "payload, clusters) "
            "VALUES (%s, %s, %s, %s, 'pending', %s, 0, %s, %s, %s, %s, %s, %s)",
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
        conn.execute(
            "UPDATE deliveries SET status = 'batched', notification_id = %s WHERE id = ANY(%s)",
            (n.id, list(delivery_ids)),
        )
        conn.execute(  # the window closes with the flush
            "INSERT INTO groups (destination, group_key, last_flush_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (destination, group_key) DO UPDATE SET "
            "last_flush_at = excluded.last_flush_at, due_at = NULL, opened_at = NULL",
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
        # One statement (no answer awaited), so a batch of records can go in one round trip.
        conn = self.conn
        conn.execute(
            "WITH n AS (UPDATE notifications SET status = %s, attempts = %s, "
            "next_attempt_at = %s, last_attempt_at = %s, last_error = %s, last_status_code = %s, "
            "delivered_at = CASE WHEN %s = 'delivered' THEN %s ELSE delivered_at END "
            # A replica that lost its lease while sending never overwrites the outcome the
            # destination's next holder recorded.
            "WHERE id = %s AND status = 'pending' RETURNING status, delivery_ids) "
            "UPDATE deliveries d SET status = n.status "
            "FROM n, json_array_elements_text(n.delivery_ids::json) AS member(id) "
            "WHERE n.status IN ('delivered', 'dead') AND d.id = member.id::bigint",
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
            conn.execute(
                "INSERT INTO thread_anchors (destination, incident, channel, ts, opened_at, "
                "state, closed, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (destination, incident) DO UPDATE SET channel = excluded.channel, "
                "ts = excluded.ts, opened_at = excluded.opened_at, state = excluded.state, "
                "closed = excluded.closed, updated_at = excluded.updated_at",
                (
                    anchor.destination,
                    anchor.incident,
                    anchor.channel,
                    anchor.ts,
                    anchor.opened_at,
                    anchor.state,
                    int(anchor.closed),
                    at,
                ),
            )

    def load_pending(
        self, destination: str, *, after: int, exclude: Sequence[int], limit: int
    ) -> list[Notification]:
        rows = self.conn.execute(
            f"SELECT {NOTIFICATION_COLUMNS} FROM notifications "
            "WHERE status = 'pending' AND destination = %s "
            "AND id > %s AND NOT (id = ANY(%s)) ORDER BY id LIMIT %s",
            (destination, after, list(exclude), limit),
        ).fetchall()
        return [notification_from_row(r) for r in rows]

    def read_thread_anchor(self, destination: str, incident: str) -> ThreadAnchor | None:
        row = self.conn.execute(
            "SELECT channel, ts, opened_at, state, closed FROM thread_anchors "
            "WHERE destination = %s AND incident = %s",
            (destination, incident),
        ).fetchone()
        if row is None:
            return None
        return ThreadAnchor(destination, incident, row[0], row[1], row[2], row[3], bool(row[4]))

    def take_requeued(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for nid, destination in self.conn.execute(
            "UPDATE notifications SET requeued = 0 WHERE requeued = 1 RETURNING id, destination"
        ).fetchall():
            found.setdefault(destination, []).append(nid)
        for ids in found.values():
            ids.sort()
        # The replica that took the flags may not hold the destination: tell its holder.
        pgshared.notify(self.conn, {d: ids[0] for d, ids in found.items()})
        return found

    def pending_counts(self) -> dict[str, tuple[int, float]]:
        return {
            r[0]: (int(r[1]), float(r[2]))
            for r in self.conn.execute(
                "SELECT destination, sum(total_events), min(created_at) FROM notifications "
                "WHERE status = 'pending' GROUP BY destination"
            )
        }

    def dead_counts(self) -> dict[str, int]:
        return {
            r[0]: int(r[1])
            for r in self.conn.execute(
                "SELECT destination, count(*) FROM notifications WHERE status = 'dead' "
                "GROUP BY destination"
            )
        }

    def prune(
        self, *, now: float, retention: float, dead_retention: float, dedup_window: float
    ) -> dict[str, int]:
        conn, cutoff = self.conn, now - retention
        removed: dict[str, int] = {}
        if not pgshared.try_lock(conn, pgshared.PRUNE_LOCK):
            return removed  # another replica is pruning
        old_dead = conn.execute(
            "DELETE FROM notifications WHERE status = 'dead' AND created_at < %s "
            "RETURNING delivery_ids",
            (now - dead_retention,),
        ).fetchall()
        dead_ids = [d for (ids,) in old_dead for d in json.loads(ids)]
        conn.execute("DELETE FROM deliveries WHERE id = ANY(%s)", (dead_ids,))
        removed["dead_notifications"] = len(old_dead)

        def delete(sql: str, *params: Any) -> int:
            return conn.execute(sql, params).rowcount

        removed["notifications"] = delete(
            "DELETE FROM notifications WHERE status = 'delivered' AND delivered_at < %s", cutoff
        )
        removed["deliveries"] = delete(
            # "cancelled": a failure held by noise control and dropped (notifiers/noise.py)
            "DELETE FROM deliveries WHERE status IN ('delivered', 'cancelled') AND created_at < %s",
            cutoff,
        )
        removed["events"] = delete(
            # (no snapshot mark to respect: replicas write de-duplication state every
            # transaction, and never replay events into it)
            "DELETE FROM events WHERE received_at < %s "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq "
            "AND d.status NOT IN ('delivered', 'cancelled'))",
            cutoff,
        )
        removed["dedup_state"] = delete(
            "DELETE FROM dedup_state WHERE was_bad = 0 AND at < %s",
            now - max(retention, dedup_window),
        )
        removed["thread_anchors"] = delete(
            "DELETE FROM thread_anchors WHERE closed = 1 AND updated_at < %s", cutoff
        )
        removed["groups"] = delete(
            "DELETE FROM groups WHERE last_flush_at < %s AND due_at IS NULL", cutoff
        )
        return removed

    def replay(self, ids: Iterable[int], *, now: float) -> int:
        rows = self.conn.execute(
            "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = %s, "
            "retry_since = %s, requeued = 1 WHERE id = ANY(%s) AND status = 'dead' "
            "RETURNING delivery_ids",
            (now, now, list(ids)),
        ).fetchall()
        delivery_ids = [d for (ids_json,) in rows for d in json.loads(ids_json)]
        self.conn.execute(
            "UPDATE deliveries SET status = 'batched' WHERE id = ANY(%s) AND status = 'dead'",
            (delivery_ids,),
        )
        return len(rows)


class QmarkConnection:
    """A PostgreSQL connection that runs the operator commands' SQL (``notifiers.admin``,
    ``notifiers.maintenance``), written once with ``?`` placeholders for both stores."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("BEGIN IMMEDIATE", "BEGIN").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(self._sql(sql), rows)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> QmarkConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def open_admin(settings: PostgresSettings) -> QmarkConnection:
    """A connection for ``fluxwatch outbox``; safe while a bridge writes (row locks)."""
    conn = connect(settings)
    try:
        migrate(conn)
    except psycopg.Error as exc:
        conn.close()
        raise PostgresError(f"cannot prepare the PostgreSQL outbox: {_why(exc)}") from None
    return QmarkConnection(conn)


# Every table of the outbox, in an order that copies references after what they point to.
TABLES = (
    "events",
    "deliveries",
    "notifications",
    "dedup_state",
    "meta",
    "thread_anchors",
    "groups",
)


def copy_from_sqlite(settings: PostgresSettings, source: Any) -> dict[str, int]:
    """Copy a single-node bridge's outbox (an open ``sqlite3.Connection``) into an empty
    PostgreSQL outbox, in one transaction: pending, delivered and dead notifications, the
    events and deliveries behind them, de-duplication state, groups and thread anchors.

    Refused when the database already holds events or notifications, or a bridge replica
    has used it.
    """
    store = PostgresStore(settings)
    store.open()
    copied: dict[str, int] = {}
    try:
        conn = store.conn
        row = conn.execute(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM notifications) "
            "+ (SELECT count(*) FROM replicas)"
        ).fetchone()
        if row and row[0]:
            raise PostgresError(
                "the PostgreSQL outbox is not empty or a bridge has used it; "
                "migrate into a new database before starting bridges on it"
            )
        with conn.transaction(), conn.cursor() as cur:
            for table in TABLES:
                columns = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                count = 0
                with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for values in source.execute(f"SELECT {names} FROM {table}"):
                        copy.write_row(values)
                        count += 1
                copied[table] = count
            adopt_rows(conn)  # open windows and sequences, as replicas expect them
    except psycopg.Error as exc:
        raise PostgresError(f"cannot copy into the PostgreSQL outbox: {_why(exc)}") from None
    finally:
        store.close()
    return copied
