"""Maintenance and operator actions on the outbox: pruning, replays, and the counts the bridge
polls. Plain functions over a connection, run by the bridge's maintenance task (inside the
writer's transaction) and by ``fluxwatch outbox``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable


def take_requeued(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """Ids, per destination, of notifications an operator replayed since the last poll."""
    found: dict[str, list[int]] = {}
    for nid, destination in conn.execute(
        "SELECT id, destination FROM notifications WHERE requeued = 1 ORDER BY id"
    ):
        found.setdefault(destination, []).append(nid)
    if found:
        conn.execute("UPDATE notifications SET requeued = 0 WHERE requeued = 1")
    return found


def pending_counts(conn: sqlite3.Connection) -> dict[str, tuple[int, float]]:
    """Per destination: events in pending notifications and the oldest one's creation time."""
    return {
        row[0]: (int(row[1]), float(row[2]))
        for row in conn.execute(
            "SELECT destination, sum(total_events), min(created_at) FROM notifications "
            "WHERE status = 'pending' GROUP BY destination"
        )
    }


def dead_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(
        conn.execute(
            "SELECT destination, count(*) FROM notifications WHERE status = 'dead' "
            "GROUP BY destination"
        ).fetchall()
    )


def prune(
    conn: sqlite3.Connection,
    *,
    now: float,
    retention: float,
    dead_retention: float,
    dedup_window: float,
) -> dict[str, int]:
    """Delete what is delivered and older than the retention, so the file never grows unbounded."""
    cutoff = now - retention
    removed: dict[str, int] = {}
    old_dead = [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT id, delivery_ids FROM notifications WHERE status = 'dead' AND created_at < ?",
            (now - dead_retention,),
        )
    ]
    for _nid, ids in old_dead:
        conn.executemany("DELETE FROM deliveries WHERE id = ?", [(i,) for i in json.loads(ids)])
    conn.executemany("DELETE FROM notifications WHERE id = ?", [(n,) for n, _ in old_dead])
    removed["dead_notifications"] = len(old_dead)
    removed["notifications"] = conn.execute(
        "DELETE FROM notifications WHERE status = 'delivered' AND delivered_at < ?", (cutoff,)
    ).rowcount
    removed["deliveries"] = conn.execute(
        # "cancelled": a failure held by noise control and dropped (notifiers/noise.py)
        "DELETE FROM deliveries WHERE status IN ('delivered', 'cancelled') AND created_at < ?",
        (cutoff,),
    ).rowcount
    removed["events"] = conn.execute(
        "DELETE FROM events WHERE received_at < ? "
        "AND seq <= (SELECT coalesce(max(value), 0) FROM meta WHERE key = 'dedup_seq') "
        "AND seq NOT IN "
        "(SELECT event_seq FROM deliveries WHERE status NOT IN ('delivered', 'cancelled'))",
        (cutoff,),
    ).rowcount
    removed["dedup_state"] = conn.execute(
        "DELETE FROM dedup_state WHERE was_bad = 0 AND at < ?",
        (now - max(retention, dedup_window),),
    ).rowcount
    removed["thread_anchors"] = conn.execute(
        "DELETE FROM thread_anchors WHERE closed = 1 AND updated_at < ?", (cutoff,)
    ).rowcount
    removed["groups"] = conn.execute(
        "DELETE FROM groups WHERE last_flush_at < ?", (cutoff,)
    ).rowcount
    return removed


def replay(conn: sqlite3.Connection, ids: Iterable[int], *, now: float) -> int:
    """Dead notifications back to pending with a full retry budget; the bridge picks them up.

    Both limits start again: the attempts and the age (``retry_since``), so a notification that
    died of age gets its hours of retries, not one attempt. The idempotency key is kept, so a
    destination that applied it before the replay applies it once.
    """
    count = 0
    for nid in ids:
        count += conn.execute(
            "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "retry_since = ?, requeued = 1 WHERE id = ? AND status = 'dead'",
            (now, now, nid),
        ).rowcount
        row = conn.execute("SELECT delivery_ids FROM notifications WHERE id = ?", (nid,)).fetchone()
        if row is not None:
            conn.executemany(
                "UPDATE deliveries SET status = 'batched' WHERE id = ? AND status = 'dead'",
                [(d,) for d in json.loads(row[0])],
            )
    return count
