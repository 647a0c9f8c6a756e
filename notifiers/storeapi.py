"""What the outbox's policy needs from a store, whichever database holds the rows.

The writer (``notifiers.outbox``) decides: de-duplication, groups, holds, retries. A store only
keeps rows: it appends events with their deliveries, turns a due group into a notification,
records attempts, answers the dispatcher's window queries, prunes and replays. Every method runs
in the outbox's writer thread, inside the transaction the writer opened with ``begin`` (or, for
``write_ingest_rows`` alone, as one statement of its own). ``notifiers.store.SqliteStore`` is the
embedded single-process store; a shared store for several replicas implements the same methods.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from notifiers.dedup import DedupState
from notifiers.model import Notification, ThreadAnchor

DeliveryRow = tuple[int, int, str, str, float, float, float]

# Columns of a notification as ``notification_from_row`` reads them, in this order.
NOTIFICATION_COLUMNS = (
    "id, destination, group_key, idempotency_key, created_at, payload, total_events, "
    "object_keys, attempts, next_attempt_at, status, clusters, retry_since"
)


def notification_from_row(r: Sequence[Any]) -> Notification:
    return Notification(
        id=r[0],
        destination=r[1],
        group_key=r[2],
        idempotency_key=r[3],
        created_at=r[4],
        events=json.loads(r[5]),
        total_events=r[6],
        object_keys=frozenset(json.loads(r[7])),
        attempts=r[8],
        next_attempt_at=r[9],
        status=r[10],
        clusters=tuple(json.loads(r[11])),
        retry_since=r[12],
    )


DedupRow = tuple[str, str, str, str, float, int, str]


class Rows(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Executes(Protocol):
    """A connection of either database, for statements without parameters (whose SQL is the
    same in both dialects)."""

    def execute(self, sql: str, /) -> Rows: ...


def load_dedup(conn: Executes) -> dict[str, DedupState]:
    return {
        row[0]: DedupState(row[1], row[2], row[3], row[4], bool(row[5]), row[6])
        for row in conn.execute(
            "SELECT key, status, reason, revision, at, was_bad, applied_revision FROM dedup_state"
        )
    }


def dedup_seq(conn: Executes) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'dedup_seq'").fetchone()
    return int(row[0]) if row else 0


def group_flushes(conn: Executes) -> dict[tuple[str, str], float]:
    return {
        (row[0], row[1]): row[2]
        for row in conn.execute("SELECT destination, group_key, last_flush_at FROM groups")
    }


def waiting_deliveries(conn: Executes) -> list[DeliveryRow]:
    return conn.execute(
        "SELECT id, event_seq, destination, group_key, created_at, due_at, group_interval "
        "FROM deliveries WHERE status = 'pending' ORDER BY id"
    ).fetchall()


class OutboxStore(Protocol):
    """The rows behind one outbox. Not thread-safe: the writer thread is its only user."""

    description: str  # where the rows live, for error messages (never a secret)

    def open(self) -> None: ...
    def close(self) -> None: ...
    def reconnect(self) -> None:
        """Open a fresh connection after a failure (a database restart); raises while the
        database is still unreachable."""

    # transactions
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...

    # intake
    def write_ingest_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Events with their delivery rows (JSON ``targets``), in one statement per chunk."""

    # state loaded at start and after a failed transaction
    def load_dedup(self) -> dict[str, DedupState]: ...
    def dedup_seq(self) -> int: ...
    def events_since(self, seq: int) -> Iterable[tuple[str, float]]:
        """(body, received_at) of the events above ``seq``, in order."""

    def group_flushes(self) -> dict[tuple[str, str], float]: ...
    def next_ids(self) -> tuple[int, int, int]:
        """The next free delivery id, notification id and event seq."""

    def waiting_deliveries(self) -> list[DeliveryRow]: ...
    def delivery_route(self, delivery_id: int) -> str: ...
    def object_events_since(self, object_key: str, since: float) -> list[tuple[float, str]]: ...
    def pending_notification_count(self) -> int: ...
    def clear_requeued(self) -> None: ...

    # writer decisions
    def write_dedup_snapshot(self, rows: Sequence[DedupRow], seq: int) -> None: ...
    def cancel_deliveries(self, ids: Sequence[int]) -> None: ...
    def event_bodies(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]: ...
    def event_summaries(self, seqs: Sequence[int]) -> list[tuple[str, str, str]]:
        """(id, object_key, cluster) of events, for groups beyond the listed maximum."""

    def insert_notification(
        self, notification: Notification, delivery_ids: Sequence[int], payload: str
    ) -> None:
        """The notification row, its deliveries batched into it, and the group's last flush."""

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
    ) -> None: ...

    # reads for the dispatcher and chat providers
    def load_pending(
        self, destination: str, *, after: int, exclude: Sequence[int], limit: int
    ) -> list[Notification]: ...
    def read_thread_anchor(self, destination: str, incident: str) -> ThreadAnchor | None: ...

    # maintenance and operator actions
    def take_requeued(self) -> dict[str, list[int]]: ...
    def pending_counts(self) -> dict[str, tuple[int, float]]: ...
    def dead_counts(self) -> dict[str, int]: ...
    def prune(
        self, *, now: float, retention: float, dead_retention: float, dedup_window: float
    ) -> dict[str, int]: ...
    def replay(self, ids: Iterable[int], *, now: float) -> int: ...
