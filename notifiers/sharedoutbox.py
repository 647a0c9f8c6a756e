"""The outbox's policy when several bridge replicas share one PostgreSQL database.

The decisions are those of ``notifiers.outbox`` (de-duplication, groups, noise holds, idempotency
keys): the same code runs them. What changes is where the state behind them lives. A single
bridge keeps it in memory and writes it behind; replicas cannot, since the next event of an
object or of a group may arrive at another replica. So every intake transaction locks the rows of
the objects and groups it touches (``notifiers.pgshared.lock_all``), loads them, lets the shared
policy decide, writes them back and commits: memory is a cache of one transaction.

Due groups are flushed in a transaction of their own by whichever replica sees them first: the
writer polls for due windows (its own windows wake it at once), and the window's lock makes sure
one replica flushes it. The acknowledgement of an intake request still waits for the commit
that holds its events, and requests arriving together still share one transaction.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from notifiers import pgshared
from notifiers.dedup import dedup_key
from notifiers.model import BAD_STATUSES, Notification
from notifiers.noise import held_group_key, parse_held_group_key
from notifiers.outbox import (
    IngestItem,
    IngestResult,
    Outbox,
    WaitingGroup,
    notification_for,
    payload_of,
)
from notifiers.pgstore import PostgresStore
from notifiers.storeapi import OutboxStore
from notifiers.writer import WriterOp

POLL_SECONDS = 0.05  # how often a replica looks for windows other replicas opened
FLUSH_LIMIT = 256  # windows flushed per transaction; more wait for the next one
SKIPPED_RETRY = 0.005  # after leaving a destination another replica was flushing
WAITING_SECONDS = 1.0  # how often the per-destination count of waiting deliveries is refreshed


class SharedOutbox(Outbox):
    """``Outbox`` for one replica of several on a ``PostgresStore``."""

    def __init__(
        self,
        store: PostgresStore,
        *,
        dedup_window: float = 3600.0,
        max_events_per_notification: int = 100,
        max_batch: int = 2048,
        clock: Callable[[], float] = time.time,
        on_commit_batch: Callable[[int], None] | None = None,
        on_busy: Callable[[float], None] | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        super().__init__(
            Path("."),
            dedup_window=dedup_window,
            max_events_per_notification=max_events_per_notification,
            max_batch=max_batch,
            clock=clock,
            on_commit_batch=on_commit_batch,
            store=store,
            on_busy=on_busy,
        )
        self.pg = store
        self.poll_seconds = poll_seconds
        self._next_poll = 0.0  # monotonic
        self._next_waiting = 0.0  # monotonic
        self._waiting: dict[str, tuple[int, float]] = {}
        self._seqs: Iterator[int] = iter(())
        self._delivery_ids: Iterator[int] = iter(())
        self._window_due: dict[tuple[str, str], float | None] = {}

    @property
    def backend_pid(self) -> int | None:
        """The writer's database session, whose own NOTIFYs this replica already knows."""
        conn = self.pg._conn
        return None if conn is None or conn.closed else int(conn.info.backend_pid)

    # ---- state: nothing survives a transaction ----

    def _load_state(self) -> int:
        self._dedup, self._groups, self._last_flush = {}, {}, {}
        self._held, self._held_objects, self._bad_times = {}, {}, {}
        self._dirty_dedup = set()
        self._due = []
        self._next_poll = 0.0
        return self.store.pending_notification_count()

    def _wait_timeout(self) -> float | None:
        timeout = super()._wait_timeout()
        until = max(0.0, self._next_poll - time.monotonic())
        return until if timeout is None else min(timeout, until)

    def _take_seq(self) -> int:
        return next(self._seqs)

    def _take_delivery_id(self) -> int:
        return next(self._delivery_ids)

    def _take_notification_id(self, conn: OutboxStore, destination: str) -> int:
        return pgshared.take_notification_ids(self.pg.conn, {destination: 1})[destination][0]

    # ---- the writer ----

    def _process(self, conn: OutboxStore, batch: list[WriterOp]) -> None:
        now = self.clock()
        results: list[Any] = []
        ingested: list[tuple[Any, list[IngestResult]]] = []
        if any(op.kind != "noop" for op in batch):
            try:
                requests = [req for op in batch if op.kind == "ingest" for req in op.args]
                items = [item for items, _f in requests for item in items]
                only_ingest = all(op.kind == "ingest" for op in batch)
                if items:
                    flat = self._ingest(items, now, commit=only_ingest)
                    it = iter(flat)
                    ingested = [(fut, [next(it) for _ in its]) for its, fut in requests]
                if only_ingest:
                    results = [None] * len(batch)
                else:
                    results = self._records_and_calls(conn, batch, begin=not items)
            except Exception as exc:
                self._transaction_failed(conn, batch, exc)
                return
            if self.on_commit_batch is not None:
                self.on_commit_batch(len(batch) + len(ingested))
            self._complete(batch, results, [], None, ingested)
        self._flush_when_due(conn, now)

    def _records_and_calls(
        self, conn: OutboxStore, batch: list[WriterOp], *, begin: bool
    ) -> list[Any]:
        """Attempt records go in one round trip (with BEGIN, and COMMIT when no call needs an
        answer first); calls run after them, then the commit."""
        calls = any(op.kind == "call" for op in batch)
        with self.pg.conn.pipeline():
            if begin:
                self.pg.conn.execute("BEGIN")
            for op in batch:
                if op.kind == "record":
                    self._record(conn, op.args)
            if not calls:
                self.pg.conn.execute("COMMIT")
        results = [op.args(conn) if op.kind == "call" else None for op in batch]
        if calls:
            conn.commit()
        return results

    def _ingest(self, items: list[IngestItem], now: float, *, commit: bool) -> list[IngestResult]:
        """Lock and load what the items touch, decide, store the events and the changed state
        (and commit, when nothing else shares the transaction): three round trips."""
        c = self.pg.conn
        keys = {dedup_key(item.event) for item in items}
        windows: set[tuple[str, str]] = set()
        holds: set[tuple[str, str]] = set()
        for item in items:
            key = dedup_key(item.event)
            for t in item.targets:
                windows.add((t.destination, t.group_key))
                if t.noise.active:
                    windows.add((t.destination, held_group_key(t.group_key, t.noise, key)))
                    holds.add((t.destination, key))
        seqs, delivery_ids = pgshared.begin_intake(
            c,
            [pgshared.lock_id("dedup", k) for k in keys]
            + [pgshared.lock_id("group", d, g) for d, g in windows],
            len(items),
            sum(len(i.targets) for i in items),
        )
        self._seqs, self._delivery_ids = iter(seqs), iter(delivery_ids)
        self._dedup, group_rows, running = pgshared.read_intake_state(c, keys, windows, holds)
        self._dirty_dedup = set()
        self._groups, self._last_flush = {}, {}
        for gkey, row in group_rows.items():
            if row.last_flush_at is not None:
                self._last_flush[gkey] = row.last_flush_at
            if row.due_at is not None:
                opened = row.opened_at if row.opened_at is not None else now
                self._groups[gkey] = WaitingGroup(
                    gkey[0], gkey[1], row.due_at, row.interval, opened
                )
        self._window_due = {g: w.due_at for g, w in self._groups.items()}
        self._load_holds(items, running)
        results, rows = self._prepare_ingest(items, now)
        pgshared.write_intake(
            c,
            rows,
            [
                (k, s.status, s.reason, s.revision, s.at, int(s.was_bad), s.applied_revision)
                for k in sorted(self._dirty_dedup)
                if (s := self._dedup.get(k)) is not None
            ],
            [
                (
                    g.destination,
                    g.group_key,
                    g.due_at,
                    g.interval,
                    g.created_at,
                    held[1] if (held := parse_held_group_key(g.group_key)) else None,
                )
                for gkey, g in sorted(self._groups.items())
                if self._window_due.get(gkey) != g.due_at  # opened here, or released early
            ],
            commit=commit,
        )
        self._dirty_dedup = set()
        return results

    def _load_holds(self, items: Sequence[IngestItem], running: pgshared.Holds) -> None:
        """Failures held by noise control wait in windows of their own (``held_group_key``);
        an open one is a running hold of its object at that destination, whatever the group
        key of the event at hand, and the object's bad events since are read back. The
        object's de-duplication lock, taken already, keeps flushes of the hold away."""
        self._held, self._held_objects, self._bad_times = {}, {}, {}
        holds = running
        for item in items:
            key = dedup_key(item.event)
            for t in item.targets:
                found = holds.get((t.destination, key)) if t.noise.active else None
                if found is None:
                    continue
                hgk, row = found
                assert row.due_at is not None
                opened = row.opened_at if row.opened_at is not None else row.due_at
                gkey = (t.destination, hgk)
                if gkey not in self._groups:
                    self._groups[gkey] = WaitingGroup(
                        t.destination, hgk, row.due_at, row.interval, opened
                    )
                    self._window_due[gkey] = row.due_at
                group = self._groups[gkey]
                hkey = (t.destination, t.route, key)
                self._held[hkey] = (hgk, group.due_at)
                self._held_objects.setdefault(key, set()).add(hkey)
                if key not in self._bad_times:
                    self._bad_times[key] = self._bad_times_since(key, group)

    def _bad_times_since(self, key: str, group: WaitingGroup) -> list[float]:
        """The object's bad events since its hold started, at the earliest when the hold's
        window opened (the time a single bridge would have counted them at)."""
        return sorted(
            {
                max(at, group.created_at)
                for at, body in pgshared.events_of_hold(
                    self.pg.conn, key.split("#", 1)[0], group.destination, group.group_key
                )
                if json.loads(body).get("status") in BAD_STATUSES
            }
        )

    # ---- due windows ----

    def _flush_when_due(self, conn: OutboxStore, now: float) -> None:
        mono = time.monotonic()
        hinted = bool(self._due) and self._due[0][0] <= now
        if not hinted and mono < self._next_poll:
            return
        while self._due and self._due[0][0] <= now:
            heapq.heappop(self._due)
        self._next_poll = mono + self.poll_seconds
        try:
            # Looked up outside a transaction: an idle replica's poll is one indexed query.
            due = pgshared.due_windows(self.pg.conn, now, FLUSH_LIMIT)
            refresh = mono >= self._next_waiting
            if not due and not refresh:
                return
            conn.begin()
            created, more = self._flush_windows(now, due) if due else ([], False)
            if refresh:
                self._waiting = pgshared.waiting_in_groups(self.pg.conn)
                self._next_waiting = mono + WAITING_SECONDS
            conn.commit()
        except Exception as exc:
            self._transaction_failed(conn, [], exc)
            return
        if more:
            self._next_poll = 0.0  # a backlog of due windows: go on at once
        if created:
            self._complete([], None, created, None)

    def _flush_windows(
        self, now: float, due: list[tuple[str, str]]
    ) -> tuple[list[Notification], bool]:
        """Every due window this replica can lock becomes a notification, in a few round trips
        whatever their number. Per destination, windows go in due order; one locked by another
        replica stops that destination here, since its notification must take the next id."""
        c = self.pg.conn
        locked = pgshared.try_lock_each(c, [pgshared.lock_id("group", d, g) for d, g in due])
        blocked: set[str] = set()
        mine: list[tuple[str, str]] = []
        for (dest, gk), ok in zip(due, locked, strict=True):
            if dest in blocked or not ok:
                blocked.add(dest)
                continue
            mine.append((dest, gk))
        rows, members = pgshared.read_windows(c, mine)
        groups: list[WaitingGroup] = []
        closed: list[tuple[str, str]] = []
        for dest, gk in mine:
            row = rows.get((dest, gk))
            if dest in blocked or row is None or row.due_at is None or row.due_at > now:
                continue  # flushed by another replica since it was listed
            waiting = members.get((dest, gk), [])
            if not waiting:
                closed.append((dest, gk))
                continue
            group = WaitingGroup(
                dest,
                gk,
                row.due_at,
                row.interval,
                row.opened_at if row.opened_at is not None else waiting[0][2],
                [m[0] for m in waiting],
                [m[1] for m in waiting],
            )
            held = parse_held_group_key(gk)
            if held is not None:
                if not pgshared.try_lock(c, pgshared.lock_id("dedup", held[1])):
                    blocked.add(dest)  # an event of the object is being decided: after it
                    continue
                self._dedup = pgshared.dedup_rows(c, [held[1]])
                self._held, self._held_objects = {}, {}
                self._bad_times = {held[1]: self._bad_times_since(held[1], group)}
                if not self._release(self.store, group):
                    closed.append((dest, gk))
                    continue
            groups.append(group)
        listed = [s for g in groups for s in g.event_seqs[: self.max_events]]
        bodies = self.store.event_bodies(listed) if listed else {}
        ids = pgshared.take_notification_ids(c, Counter(g.destination for g in groups))
        flushed: list[tuple[Notification, Sequence[int], str]] = []
        for group in groups:
            if group.destination not in ids:
                continue  # another replica is committing a flush of it: next look
            shown = group.event_seqs[: self.max_events]
            rest = group.event_seqs[len(shown) :]
            notification = notification_for(
                group,
                [bodies[s] for s in shown if s in bodies],
                self.store.event_summaries(rest) if rest else [],
                ids[group.destination].pop(0),
                now,
            )
            flushed.append((notification, group.delivery_ids, payload_of(notification)))
        pgshared.write_flush(c, flushed, closed, now)
        if any(g.destination not in ids for g in groups):
            self._next_poll = min(self._next_poll, time.monotonic() + SKIPPED_RETRY)
        return [n for n, _d, _p in flushed], len(due) >= FLUSH_LIMIT

    # ---- views ----

    def pending_groups(self) -> dict[str, tuple[int, float]]:
        return dict(self._waiting)

    def forget_settled(self, before: float) -> int:
        return 0  # nothing is remembered beyond a transaction
