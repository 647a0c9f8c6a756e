"""The SQL that lets several bridge replicas share one PostgreSQL outbox.

No leader and no consensus of our own: PostgreSQL's transactions and locks are the coordination.

- De-duplication state and group windows are rows. An intake transaction takes a
  transaction-level advisory lock on every object and group it touches (in one sorted pass, so
  two replicas can never wait on each other in a cycle) before reading them, so two events of one
  object decide in turn, and events of one group arriving at different replicas join one window.
- A due group is flushed by whichever replica gets its lock first (``pg_try_advisory_xact_lock``:
  the others skip it, nobody waits). Notification ids come from one sequence, taken while holding
  the destination's row in ``destination_order`` until commit, so per destination ids grow in
  commit order and a reader that has seen id N has seen every id below it.
- A destination is delivered by one replica at a time: the holder of its row in
  ``destination_leases`` (``claimed_by``/``lease_until``, claimed with ``FOR UPDATE SKIP LOCKED``).
  A replica that stops renewing loses its destinations when the lease runs out, and another
  replica takes them over with the circuit breaker's state.
- ``NOTIFY fluxwatch_outbox`` tells the holder of a destination that another replica stored a
  notification for it.

Lease times are the database's clock, so replicas on nodes whose clocks disagree still agree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from notifiers.dedup import DedupState
from notifiers.storeapi import DedupRow

CHANNEL = "fluxwatch_outbox"  # LISTEN/NOTIFY channel: "<destination>\t<notification id>"
PRUNE_LOCK = 0x666C7578_0003  # one replica prunes at a time

Conn = psycopg.Connection[Any]
GroupKey = tuple[str, str]  # (destination, group_key)

_DB_NOW = "extract(epoch FROM clock_timestamp())"


def lock_id(*parts: str) -> int:
    """A stable 64-bit advisory lock id for a row that may not exist yet (an object's
    de-duplication state, a group's window): the same on every replica."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_all(conn: Conn, ids: Iterable[int]) -> None:
    """Wait for every lock, taken in ascending order: transactions that lock overlapping sets
    queue behind each other instead of deadlocking."""
    ordered = sorted(set(ids))
    if ordered:
        conn.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", (ordered,)
        )


def try_lock(conn: Conn, lock: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (lock,)).fetchone()
    return bool(row and row[0])


def take_ids(conn: Conn, sequence: str, count: int) -> list[int]:
    if count <= 0:
        return []
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (sequence, count)
        )
    ]


def next_notification_id(conn: Conn, destination: str) -> int:
    """A notification id above every committed one of ``destination``; the destination's row
    stays locked until commit, so ids of one destination are committed in order."""
    row = conn.execute(
        "INSERT INTO destination_order (destination, last_notification) "
        "VALUES (%s, nextval('notification_ids')) ON CONFLICT (destination) DO UPDATE SET "
        "last_notification = nextval('notification_ids') RETURNING last_notification",
        (destination,),
    ).fetchone()
    assert row is not None
    return int(row[0])


# ---- de-duplication rows ----


def dedup_rows(conn: Conn, keys: Iterable[str]) -> dict[str, DedupState]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    return {
        r[0]: DedupState(r[1], r[2], r[3], r[4], bool(r[5]), r[6])
        for r in conn.execute(
            "SELECT key, status, reason, revision, at, was_bad, applied_revision "
            "FROM dedup_state WHERE key = ANY(%s)",
            (wanted,),
        )
    }


def write_dedup(conn: Conn, rows: Sequence[DedupRow]) -> None:
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dedup_state (key, status, reason, revision, at, was_bad, "
            "applied_revision) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET status = excluded.status, "
            "reason = excluded.reason, revision = excluded.revision, at = excluded.at, "
            "was_bad = excluded.was_bad, applied_revision = excluded.applied_revision",
            rows,
        )


# ---- group windows ----


@dataclass(frozen=True, slots=True)
class GroupRow:
    due_at: float | None  # None: no window open
    interval: float
    opened_at: float | None
    last_flush_at: float | None


def group_rows(conn: Conn, keys: Iterable[GroupKey]) -> dict[GroupKey, GroupRow]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    return {
        (r[0], r[1]): GroupRow(r[2], r[3], r[4], r[5])
        for r in conn.execute(
            "SELECT g.destination, g.group_key, g.due_at, g.group_interval, g.opened_at, "
            "g.last_flush_at FROM groups g JOIN unnest(%s::text[], %s::text[]) AS w(d, k) "
            "ON g.destination = w.d AND g.group_key = w.k",
            ([d for d, _ in wanted], [k for _, k in wanted]),
        )
    }


def open_holds(
    conn: Conn, wanted: Iterable[tuple[str, str]], marker: str
) -> dict[tuple[str, str], tuple[str, GroupRow]]:
    """Open windows of failures held by noise control, per (destination, object key): their
    group key names the object at its end (``notifiers.noise.held_group_key``), after
    ``marker``, whatever the route's grouping made of the rest."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    found: dict[tuple[str, str], tuple[str, GroupRow]] = {}
    for dest, key, gk, due, interval, opened, last in conn.execute(
        "SELECT w.d, w.k, g.group_key, g.due_at, g.group_interval, g.opened_at, "
        "g.last_flush_at FROM groups g JOIN unnest(%s::text[], %s::text[]) AS w(d, k) "
        "ON g.destination = w.d AND g.due_at IS NOT NULL AND strpos(g.group_key, %s) > 0 "
        "AND right(g.group_key, length(w.k) + 7) = 'object=' || w.k",
        ([d for d, _ in pairs], [k for _, k in pairs], marker),
    ):
        found[(str(dest), str(key))] = (str(gk), GroupRow(due, interval, opened, last))
    return found


def events_of_hold(
    conn: Conn, object_key: str, destination: str, group_key: str
) -> list[tuple[float, str]]:
    """(received_at, body) of an object's events from the one that started a hold on."""
    return [
        (float(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT received_at, body FROM events WHERE object_key = %s AND seq >= ("
            "SELECT min(event_seq) FROM deliveries WHERE destination = %s AND group_key = %s "
            "AND status = 'pending') ORDER BY seq",
            (object_key, destination, group_key),
        )
    ]


def open_windows(conn: Conn, rows: Sequence[tuple[str, str, float, float, float]]) -> None:
    """(destination, group_key, due_at, interval, opened_at) of windows opened or moved."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO groups (destination, group_key, last_flush_at, due_at, group_interval, "
            "opened_at) VALUES (%s, %s, NULL, %s, %s, %s) ON CONFLICT (destination, group_key) "
            "DO UPDATE SET due_at = excluded.due_at, group_interval = excluded.group_interval, "
            "opened_at = excluded.opened_at",
            rows,
        )


def close_window(conn: Conn, destination: str, group_key: str) -> None:
    conn.execute(
        "UPDATE groups SET due_at = NULL, opened_at = NULL "
        "WHERE destination = %s AND group_key = %s",
        (destination, group_key),
    )


def due_groups(conn: Conn, now: float, limit: int) -> list[GroupKey]:
    """Due windows, sorted by destination so flushes lock destinations in one order."""
    rows = conn.execute(
        "SELECT destination, group_key FROM groups WHERE due_at <= %s ORDER BY due_at LIMIT %s",
        (now, limit),
    ).fetchall()
    return sorted((str(r[0]), str(r[1])) for r in rows)


def group_members(conn: Conn, destination: str, group_key: str) -> list[tuple[int, int, float]]:
    """(delivery id, event seq, created_at) of the deliveries waiting in a window, in order."""
    return [
        (int(r[0]), int(r[1]), float(r[2]))
        for r in conn.execute(
            "SELECT id, event_seq, created_at FROM deliveries WHERE status = 'pending' "
            "AND destination = %s AND group_key = %s ORDER BY id",
            (destination, group_key),
        )
    ]


def waiting_in_groups(conn: Conn) -> dict[str, tuple[int, float]]:
    """Per destination: deliveries waiting in open windows and the oldest one's creation time."""
    return {
        str(r[0]): (int(r[1]), float(r[2]))
        for r in conn.execute(
            "SELECT destination, count(*), min(created_at) FROM deliveries "
            "WHERE status = 'pending' GROUP BY destination"
        )
    }


def notify(conn: Conn, newest: Mapping[str, int]) -> None:
    """Tell every replica (on commit) the newest notification id stored per destination."""
    if newest:
        conn.execute(
            "SELECT count(pg_notify(%s, p)) FROM unnest(%s::text[]) AS p",
            (CHANNEL, [f"{d}\t{n}" for d, n in sorted(newest.items())]),
        )


def parse_notice(payload: str) -> tuple[str, int] | None:
    destination, _, nid = payload.rpartition("\t")
    try:
        return (destination, int(nid)) if destination else None
    except ValueError:
        return None


# ---- destination leases ----


@dataclass(frozen=True, slots=True)
class HandedOver:
    """What the previous holder of a destination knew that the next one should too."""

    breaker_opened_at: float | None
    paused_until: float


@dataclass(frozen=True, slots=True)
class LeaseRound:
    held: dict[str, HandedOver]  # every destination this replica holds after the round
    gained: tuple[str, ...]  # held now, not before
    taken_over: tuple[str, ...]  # gained from a replica whose lease had run out
    live_replicas: int
    db_now: float


def fair_share(destinations: int, live_replicas: int) -> int:
    """Destinations one replica should hold so that every live replica delivers some."""
    return math.ceil(destinations / max(1, live_replicas))


def lease_round(
    conn: Conn,
    *,
    replica: str,
    lease: float,
    destinations: Sequence[str],
    state: Mapping[str, HandedOver],
    release: Sequence[str],
) -> LeaseRound:
    """Renew this replica's leases (saving the breaker state to hand over), give up
    ``release``, and claim free or expired destinations up to the fair share. One transaction."""
    row = conn.execute(f"SELECT {_DB_NOW}").fetchone()
    assert row is not None
    now = float(row[0])
    conn.execute(
        "INSERT INTO replicas (id, started_at, seen_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        (replica, now, now),
    )
    # Rows of replicas gone for long are history, not members.
    conn.execute("DELETE FROM replicas WHERE seen_at < %s", (now - 20 * lease,))
    live_row = conn.execute(
        "SELECT count(*) FROM replicas WHERE seen_at >= %s", (now - lease,)
    ).fetchone()
    live = int(live_row[0]) if live_row else 1
    conn.execute(
        "INSERT INTO destination_leases (destination) SELECT unnest(%s::text[]) "
        "ON CONFLICT (destination) DO NOTHING",
        (sorted(destinations),),
    )
    if release:
        conn.execute(
            "UPDATE destination_leases SET claimed_by = '', lease_until = 0 "
            "WHERE claimed_by = %s AND destination = ANY(%s)",
            (replica, list(release)),
        )
    held_before = {
        str(r[0])
        for r in conn.execute(
            "SELECT destination FROM destination_leases WHERE claimed_by = %s "
            "AND lease_until >= %s AND destination = ANY(%s)",
            (replica, now, list(destinations)),
        )
    }
    renew = sorted(held_before)
    if renew:
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE destination_leases SET lease_until = %s, breaker_opened_at = %s, "
                "paused_until = %s WHERE destination = %s AND claimed_by = %s",
                [
                    (
                        now + lease,
                        state[d].breaker_opened_at if d in state else None,
                        state[d].paused_until if d in state else 0.0,
                        d,
                        replica,
                    )
                    for d in renew
                ],
            )
    want = fair_share(len(destinations), live) - len(renew)
    gained: list[str] = []
    taken_over: list[str] = []
    handed: dict[str, HandedOver] = {}
    if want > 0:
        for dest, holder, breaker_opened_at, paused_until in conn.execute(
            "SELECT destination, claimed_by, breaker_opened_at, paused_until "
            "FROM destination_leases WHERE destination = ANY(%s) "
            "AND (claimed_by = '' OR lease_until < %s) ORDER BY destination "
            "LIMIT %s FOR UPDATE SKIP LOCKED",
            (list(destinations), now, want),
        ).fetchall():
            gained.append(str(dest))
            if holder and holder != replica:
                taken_over.append(str(dest))
            handed[str(dest)] = HandedOver(breaker_opened_at, float(paused_until))
        if gained:
            conn.execute(
                "UPDATE destination_leases SET claimed_by = %s, lease_until = %s "
                "WHERE destination = ANY(%s)",
                (replica, now + lease, gained),
            )
    held = {d: state.get(d, HandedOver(None, 0.0)) for d in renew}
    held.update(handed)
    return LeaseRound(held, tuple(gained), tuple(taken_over), live, now)


def release_all(conn: Conn, replica: str) -> None:
    """A replica stopping cleanly hands its destinations over at once, not after the lease."""
    conn.execute(
        "UPDATE destination_leases SET claimed_by = '', lease_until = 0 WHERE claimed_by = %s",
        (replica,),
    )
    conn.execute("DELETE FROM replicas WHERE id = %s", (replica,))
