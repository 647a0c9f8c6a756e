"""Operator views and actions on the outbox (``fluxwatch outbox list|show|replay|purge``).

They open their own connection: WAL lets them read while the bridge writes, and the bridge picks
up replays within a second (it polls the ``requeued`` flag), so no restart is needed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notifiers.maintenance import replay
from notifiers.store import DB_NAME, connect

STATUSES = ("pending", "delivered", "dead")


def open_outbox(state_dir: Path) -> sqlite3.Connection:
    path = state_dir / DB_NAME
    if not path.exists():
        raise FileNotFoundError(f"no outbox at {path}")
    return connect(path)


def list_notifications(
    conn: sqlite3.Connection,
    *,
    status: str | None = None,
    destination: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    where, params = ["1 = 1"], []
    if status:
        where.append("status = ?")
        params.append(status)
    if destination:
        where.append("destination = ?")
        params.append(destination)
    rows = conn.execute(
        "SELECT id, destination, status, attempts, created_at, next_attempt_at, last_error, "
        "last_status_code, total_events, group_key FROM notifications "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    keys = (
        "id",
        "destination",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_error",
        "last_status_code",
        "events",
        "group_key",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def show_notification(conn: sqlite3.Connection, nid: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, destination, group_key, idempotency_key, status, created_at, attempts, "
        "next_attempt_at, last_attempt_at, last_error, last_status_code, delivered_at, "
        "total_events, delivery_ids, object_keys, payload FROM notifications WHERE id = ?",
        (nid,),
    ).fetchone()
    if row is None:
        return None
    keys = (
        "id",
        "destination",
        "group_key",
        "idempotency_key",
        "status",
        "created_at",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_error",
        "last_status_code",
        "delivered_at",
        "total_events",
        "delivery_ids",
        "object_keys",
        "events",
    )
    doc = dict(zip(keys, row, strict=True))
    for key in ("delivery_ids", "object_keys", "events"):
        doc[key] = json.loads(doc[key])
    return doc


def readable_time(value: Any) -> Any:
    """Unix seconds as ISO 8601 UTC (``2026-12-04T09:30:00Z``); anything else unchanged."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def with_readable_times(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with every ``*_at`` time, its own and its events', readable by people."""
    out = {k: readable_time(v) if k.endswith("_at") else v for k, v in doc.items()}
    if isinstance(out.get("events"), list):
        out["events"] = [
            with_readable_times(e) if isinstance(e, Mapping) else e for e in out["events"]
        ]
    return out


def counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for dest, status, n in conn.execute(
        "SELECT destination, status, count(*) FROM notifications GROUP BY destination, status"
    ):
        out.setdefault(dest, {})[status] = n
    return out


def replay_notifications(
    conn: sqlite3.Connection,
    ids: Sequence[int],
    *,
    all_dead: bool,
    destination: str | None,
    now: float,
) -> int:
    targets = list(ids)
    if all_dead:
        sql = "SELECT id FROM notifications WHERE status = 'dead'"
        params: list[Any] = []
        if destination:
            sql += " AND destination = ?"
            params.append(destination)
        targets.extend(r[0] for r in conn.execute(sql, params))
    conn.execute("BEGIN IMMEDIATE")
    try:
        n = replay(conn, targets, now=now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return n


def purge_notifications(
    conn: sqlite3.Connection,
    *,
    ids: Sequence[int],
    statuses: Sequence[str],
    older_than: float | None,
    destination: str | None,
    now: float,
) -> int:
    """Delete dead or delivered notifications (never pending ones) and their deliveries."""
    where = ["status IN ('dead', 'delivered')"]
    params: list[Any] = []
    if ids:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        params.extend(ids)
    if statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if older_than is not None:
        where.append("created_at < ?")
        params.append(now - older_than)
    if destination:
        where.append("destination = ?")
        params.append(destination)
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            f"SELECT id, delivery_ids FROM notifications WHERE {' AND '.join(where)}", params
        ).fetchall()
        for nid, delivery_ids in rows:
            conn.executemany(
                "DELETE FROM deliveries WHERE id = ?", [(d,) for d in json.loads(delivery_ids)]
            )
            conn.execute("DELETE FROM notifications WHERE id = ?", (nid,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(rows)
