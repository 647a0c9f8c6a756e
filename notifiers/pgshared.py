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
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from notifiers.dedup import DedupState
from notifiers.model import Notification
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


def try_lock(conn: Conn, lock: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (lock,)).fetchone()
    return bool(row and row[0])


# ---- de-duplication rows ----


_DEDUP_SQL = (
    "SELECT key, status, reason, revision, at, was_bad, applied_revision "
    "FROM dedup_state WHERE key = ANY(%s)"
)


def _dedup_from(rows: Iterable[Any]) -> dict[str, DedupState]:
    return {r[0]: DedupState(r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows}


def dedup_rows(conn: Conn, keys: Iterable[str]) -> dict[str, DedupState]:
    wanted = sorted(set(keys))
    return _dedup_from(conn.execute(_DEDUP_SQL, (wanted,))) if wanted else {}


def write_dedup(conn: Conn, rows: Sequence[DedupRow]) -> None:
    if not rows:
        return
    columns = list(zip(*rows, strict=True))  # one statement for the batch, arrays per column
    conn.execute(
        "INSERT INTO dedup_state (key, status, reason, revision, at, was_bad, applied_revision) "
        "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], "
        "%b::float8[], %b::int[], %b::text[]) "
        "ON CONFLICT (key) DO UPDATE SET status = excluded.status, "
        "reason = excluded.reason, revision = excluded.revision, at = excluded.at, "
        "was_bad = excluded.was_bad, applied_revision = excluded.applied_revision",
        [list(c) for c in columns],
    )


# ---- group windows ----


@dataclass(frozen=True, slots=True)
class GroupRow:
    due_at: float | None  # None: no window open
    interval: float
    opened_at: float | None
    last_flush_at: float | None


# LATERAL: one primary-key lookup per wanted group, never a scan of every group
_GROUPS_SQL = (
    "SELECT g.destination, g.group_key, g.due_at, g.group_interval, g.opened_at, "
    "g.last_flush_at FROM unnest(%b::text[], %b::text[]) AS w(d, k), LATERAL ("
    "SELECT * FROM groups WHERE destination = w.d AND group_key = w.k) AS g"
)
# Open windows of failures held by noise control, per (destination, object key), whatever the
# route's grouping made of their group key (``notifiers.noise.held_group_key``).
_HOLDS_SQL = (
    "SELECT w.d, w.k, g.group_key, g.due_at, g.group_interval, g.opened_at, "
    "g.last_flush_at FROM unnest(%b::text[], %b::text[]) AS w(d, k), LATERAL ("
    "SELECT * FROM groups WHERE destination = w.d AND held_object = w.k "
    "AND due_at IS NOT NULL) AS g"
)

Holds = dict[tuple[str, str], tuple[str, GroupRow]]


def _pairs(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [a for a, _ in pairs], [b for _, b in pairs]


def _groups_from(rows: Iterable[Any]) -> dict[GroupKey, GroupRow]:
    return {(r[0], r[1]): GroupRow(r[2], r[3], r[4], r[5]) for r in rows}


def _holds_from(rows: Iterable[Any]) -> Holds:
    return {(str(r[0]), str(r[1])): (str(r[2]), GroupRow(r[3], r[4], r[5], r[6])) for r in rows}


# ---- one intake transaction in three round trips (psycopg pipeline mode) ----


def begin_intake(
    conn: Conn, locks: Iterable[int], events: int, deliveries: int
) -> tuple[list[int], list[int]]:
    """BEGIN, wait for every lock (ascending: transactions that lock overlapping sets queue
    instead of deadlocking), and take the batch's event seqs and delivery ids."""
    with conn.pipeline():
        conn.execute("BEGIN")
        conn.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%b::bigint[]) AS k",
            (sorted(set(locks)),),
        )
        ids = conn.execute(
            "SELECT ARRAY(SELECT nextval('event_seqs') FROM generate_series(1, %s)), "
            "ARRAY(SELECT nextval('delivery_ids') FROM generate_series(1, %s))",
            (events, deliveries),
        )
    row = ids.fetchone()
    assert row is not None
    return [int(i) for i in row[0]], [int(i) for i in row[1]]


def read_intake_state(
    conn: Conn,
    keys: Iterable[str],
    windows: Iterable[GroupKey],
    holds: Iterable[tuple[str, str]],
) -> tuple[dict[str, DedupState], dict[GroupKey, GroupRow], Holds]:
    """The locked rows: de-duplication state, group windows, running holds. Read after the
    locks were granted, in statements of their own, so they see what the previous holder of
    a lock committed."""
    wanted_keys, wanted_windows, wanted_holds = (
        sorted(set(keys)),
        sorted(set(windows)),
        sorted(set(holds)),
    )
    with conn.pipeline():
        dedup = conn.execute(_DEDUP_SQL, (wanted_keys,))
        groups = conn.execute(_GROUPS_SQL, _pairs(wanted_windows))
        running = conn.execute(_HOLDS_SQL, _pairs(wanted_holds))
    return _dedup_from(dedup), _groups_from(groups), _holds_from(running)


def write_intake(
    conn: Conn,
    rows: Sequence[Sequence[Any]],
    dedup: Sequence[DedupRow],
    windows: Sequence[tuple[str, str, float, float, float, str | None]],
    *,
    commit: bool,
) -> None:
    """The events with their deliveries (``notifiers.outbox`` row layout: targets as JSON in
    the last field), the changed de-duplication state and windows, and COMMIT when asked, in
    one round trip."""
    deliveries: list[tuple[Any, ...]] = [
        (t[0], row[0], t[1], t[2], t[3], t[4], t[5], t[6])
        for row in rows
        for t in json.loads(row[8])
    ]
    with conn.pipeline():
        if rows:
            conn.execute(
                "INSERT INTO events (seq, id, received_at, source, object_key, decision, body, "
                "raw) SELECT * FROM unnest(%b::bigint[], %b::text[], %b::float8[], %b::text[], "
                "%b::text[], %b::text[], %b::text[], %b::text[])",
                [list(c) for c in zip(*(r[:8] for r in rows), strict=True)],
            )
        if deliveries:
            conn.execute(
                "INSERT INTO deliveries (id, event_seq, destination, group_key, route, status, "
                "created_at, due_at, group_interval) SELECT d.id, d.seq, d.dest, d.gk, d.route, "
                "'pending', d.created, d.due, d.every FROM unnest(%b::bigint[], %b::bigint[], "
                "%b::text[], %b::text[], %b::text[], %b::float8[], %b::float8[], %b::float8[]) "
                "AS d(id, seq, dest, gk, route, created, due, every)",
                [list(c) for c in zip(*deliveries, strict=True)],
            )
        write_dedup(conn, dedup)
        open_windows(conn, windows)
        if commit:
            conn.execute("COMMIT")


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


def open_windows(
    conn: Conn, rows: Sequence[tuple[str, str, float, float, float, str | None]]
) -> None:
    """(destination, group_key, due_at, interval, opened_at, held object or None) of windows
    opened or moved."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    conn.execute(
        "INSERT INTO groups (destination, group_key, due_at, group_interval, opened_at, "
        "held_object) SELECT * FROM unnest(%b::text[], %b::text[], %b::float8[], "
        "%b::float8[], %b::float8[], %b::text[]) ON CONFLICT (destination, group_key) "
        "DO UPDATE SET due_at = excluded.due_at, group_interval = excluded.group_interval, "
        "opened_at = excluded.opened_at, held_object = excluded.held_object",
        [list(c) for c in columns],
    )


def due_windows(conn: Conn, now: float, limit: int) -> list[GroupKey]:
    """Due windows per destination in the order a single bridge flushes them (due time, then
    key): notifications of one destination get their ids in this order."""
    return [
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT destination, group_key FROM groups WHERE due_at <= %s "
            "ORDER BY destination, due_at, group_key LIMIT %s",
            (now, limit),
        )
    ]


def try_lock_each(conn: Conn, locks: Sequence[int]) -> list[bool]:
    """``pg_try_advisory_xact_lock`` on each, in the order given; nobody waits."""
    return [
        bool(r[0])
        for r in conn.execute(
            "SELECT pg_try_advisory_xact_lock(l.k) FROM unnest(%b::bigint[]) "
            "WITH ORDINALITY AS l(k, i) ORDER BY l.i",
            (list(locks),),
        )
    ]


def read_windows(
    conn: Conn, windows: Sequence[GroupKey]
) -> tuple[dict[GroupKey, GroupRow], dict[GroupKey, list[tuple[int, int, float]]]]:
    """Locked windows' rows and their waiting deliveries (id, event seq, created_at) in order,
    in one round trip."""
    members: dict[GroupKey, list[tuple[int, int, float]]] = {}
    if not windows:
        return {}, members
    with conn.pipeline():
        rows = conn.execute(_GROUPS_SQL, _pairs(windows))
        waiting = conn.execute(
            "SELECT d.destination, d.group_key, d.id, d.event_seq, d.created_at "
            "FROM unnest(%b::text[], %b::text[]) AS w(d, k), LATERAL (SELECT * FROM deliveries "
            "WHERE status = 'pending' AND destination = w.d AND group_key = w.k) AS d "
            "ORDER BY d.id",
            _pairs(windows),
        )
    for dest, gk, did, seq, created in waiting:
        members.setdefault((str(dest), str(gk)), []).append((int(did), int(seq), float(created)))
    return _groups_from(rows), members


def take_notification_ids(conn: Conn, counts: Mapping[str, int]) -> dict[str, list[int]]:
    """Ids for each destination's new notifications, taken while its ``destination_order``
    row is locked (until commit), so per destination ids are committed in ascending order and
    a reader that has seen id N has seen every id below it. A destination whose row another
    replica holds (its flush is committing) is left out, not waited for: its windows stay due
    for the next look, and this replica's writer goes on with intake and delivery records."""
    wanted = sorted(d for d, n in counts.items() if n > 0)
    if not wanted:
        return {}
    with conn.pipeline():
        conn.execute(
            "INSERT INTO destination_order (destination) SELECT unnest(%b::text[]) "
            "ON CONFLICT (destination) DO NOTHING",
            (wanted,),
        )
        locked = conn.execute(
            "SELECT destination FROM destination_order WHERE destination = ANY(%b::text[]) "
            "ORDER BY destination FOR UPDATE SKIP LOCKED",
            (wanted,),
        )
        ids = conn.execute(
            "SELECT ARRAY(SELECT nextval('notification_ids') FROM generate_series(1, %s))",
            (sum(counts[d] for d in wanted),),
        )
    mine = sorted(str(r[0]) for r in locked)
    row = ids.fetchone()
    assert row is not None
    pool = iter(int(i) for i in row[0])
    return {d: [next(pool) for _ in range(counts[d])] for d in mine}


def write_flush(
    conn: Conn,
    notifications: Sequence[tuple[Notification, Sequence[int], str]],
    closed: Sequence[GroupKey],
    now: float,
) -> None:
    """Store flushed windows as notifications (with their delivery ids and payload), close
    them and the windows that came to nothing, and tell every replica: one round trip."""
    with conn.pipeline():
        if notifications:
            conn.execute(
                "INSERT INTO notifications (id, destination, group_key, idempotency_key, "
                "status, created_at, attempts, next_attempt_at, total_events, delivery_ids, "
                "object_keys, payload, clusters) SELECT n.id, n.dest, n.gk, n.key, 'pending', "
                "n.created, 0, n.created, n.total, n.deliveries, n.objects, n.payload, "
                "n.clusters FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], "
                "%b::float8[], %b::int[], %b::text[], %b::text[], %b::text[], %b::text[]) "
                "AS n(id, dest, gk, key, created, total, deliveries, objects, payload, clusters)",
                [
                    [n.id for n, _d, _p in notifications],
                    [n.destination for n, _d, _p in notifications],
                    [n.group_key for n, _d, _p in notifications],
                    [n.idempotency_key for n, _d, _p in notifications],
                    [n.created_at for n, _d, _p in notifications],
                    [n.total_events for n, _d, _p in notifications],
                    [json.dumps(list(d)) for _n, d, _p in notifications],
                    [json.dumps(sorted(n.object_keys)) for n, _d, _p in notifications],
                    [p for _n, _d, p in notifications],
                    [json.dumps(list(n.clusters)) for n, _d, _p in notifications],
                ],
            )
            batched = [(did, n.id) for n, ids, _p in notifications for did in ids]
            conn.execute(
                "UPDATE deliveries d SET status = 'batched', notification_id = u.n "
                "FROM unnest(%b::bigint[], %b::bigint[]) AS u(id, n) WHERE d.id = u.id",
                ([i for i, _n in batched], [n for _i, n in batched]),
            )
        flushed = sorted({(n.destination, n.group_key) for n, _d, _p in notifications})
        if flushed or closed:
            conn.execute(
                "UPDATE groups g SET due_at = NULL, opened_at = NULL, last_flush_at = CASE "
                "WHEN w.flushed THEN %s ELSE g.last_flush_at END FROM unnest(%b::text[], "
                "%b::text[], %b::bool[]) AS w(d, k, flushed) "
                "WHERE g.destination = w.d AND g.group_key = w.k",
                (
                    now,
                    [d for d, _k in flushed] + [d for d, _k in closed],
                    [k for _d, k in flushed] + [k for _d, k in closed],
                    [True] * len(flushed) + [False] * len(closed),
                ),
            )
        newest: dict[str, int] = {}
        for n, _d, _p in notifications:
            newest[n.destination] = max(newest.get(n.destination, 0), n.id)
        notify(conn, newest)


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
            "SELECT count(pg_notify(%s, p)) FROM unnest(%b::text[]) AS p",
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
        "INSERT INTO destination_leases (destination) SELECT unnest(%b::text[]) "
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
