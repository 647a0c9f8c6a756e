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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from notifiers import pgshared
from notifiers.dedup import dedup_key
from notifiers.model import BAD_STATUSES, Notification
from notifiers.noise import HELD_MARK, held_group_key, parse_held_group_key
from notifiers.outbox import IngestItem, IngestResult, Outbox, WaitingGroup
from notifiers.pgstore import PostgresStore
from notifiers.storeapi import OutboxStore
from notifiers.writer import WriterOp

POLL_SECONDS = 0.05  # how often a replica looks for windows other replicas opened
FLUSH_LIMIT = 256  # windows flushed per transaction; more wait for the next one
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
        return pgshared.next_notification_id(self.pg.conn, destination)

    # ---- the writer ----

    def _process(self, conn: OutboxStore, batch: list[WriterOp]) -> None:
        now = self.clock()
        results: list[Any] = []
        ingested: list[tuple[Any, list[IngestResult]]] = []
        if any(op.kind != "noop" for op in batch):
            try:
                requests = [req for op in batch if op.kind == "ingest" for req in op.args]
                items = [item for items, _f in requests for item in items]
                conn.begin()
                if items:
                    flat = self._ingest(items, now)
                    it = iter(flat)
                    ingested = [(fut, [next(it) for _ in its]) for its, fut in requests]
                results = self._run_ops(conn, batch)
                conn.commit()
            except Exception as exc:
                self._transaction_failed(conn, batch, exc)
                return
            if self.on_commit_batch is not None:
                self.on_commit_batch(len(batch) + len(ingested))
            self._complete(batch, results, [], None, ingested)
        self._flush_when_due(conn, now)

    def _ingest(self, items: list[IngestItem], now: float) -> list[IngestResult]:
        """Lock and load what the items touch, decide, store the events and the changed state."""
        c = self.pg.conn
        keys = {dedup_key(item.event) for item in items}
        windows: set[tuple[str, str]] = set()
        for item in items:
            key = dedup_key(item.event)
            for t in item.targets:
                windows.add((t.destination, t.group_key))
                if t.noise.active:
                    windows.add((t.destination, held_group_key(t.group_key, t.noise, key)))
        pgshared.lock_all(
            c,
            [pgshared.lock_id("dedup", k) for k in keys]
            + [pgshared.lock_id("group", d, g) for d, g in windows],
        )
        self._dedup = pgshared.dedup_rows(c, keys)
        self._dirty_dedup = set()
        self._groups, self._last_flush = {}, {}
        for gkey, row in pgshared.group_rows(c, windows).items():
            if row.last_flush_at is not None:
                self._last_flush[gkey] = row.last_flush_at
            if row.due_at is not None:
                opened = row.opened_at if row.opened_at is not None else now
                self._groups[gkey] = WaitingGroup(
                    gkey[0], gkey[1], row.due_at, row.interval, opened
                )
        self._window_due = {g: w.due_at for g, w in self._groups.items()}
        self._load_holds(items)
        self._seqs = iter(pgshared.take_ids(c, "event_seqs", len(items)))
        self._delivery_ids = iter(
            pgshared.take_ids(c, "delivery_ids", sum(len(i.targets) for i in items))
        )
        results, rows = self._prepare_ingest(items, now)
        self.store.write_ingest_rows(rows)
        pgshared.write_dedup(
            c,
            [
                (k, s.status, s.reason, s.revision, s.at, int(s.was_bad), s.applied_revision)
                for k in sorted(self._dirty_dedup)
                if (s := self._dedup.get(k)) is not None
            ],
        )
        pgshared.open_windows(
            c,
            [
                (g.destination, g.group_key, g.due_at, g.interval, g.created_at)
                for gkey, g in sorted(self._groups.items())
                if self._window_due.get(gkey) != g.due_at  # opened here, or released early
            ],
        )
        self._dirty_dedup = set()
        return results

    def _load_holds(self, items: Sequence[IngestItem]) -> None:
        """Failures held by noise control wait in windows of their own (``held_group_key``);
        an open one is a running hold of its object at that destination, whatever the group
        key of the event at hand, and the object's bad events since are read back. The
        object's de-duplication lock, taken already, keeps flushes of the hold away."""
        self._held, self._held_objects, self._bad_times = {}, {}, {}
        wanted = {
            (t.destination, dedup_key(item.event))
            for item in items
            for t in item.targets
            if t.noise.active
        }
        holds = pgshared.open_holds(self.pg.conn, wanted, HELD_MARK)
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
            conn.begin()
            created, more = self._flush_windows(now)
            if mono >= self._next_waiting:
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

    def _flush_windows(self, now: float) -> tuple[list[Notification], bool]:
        c = self.pg.conn
        due = pgshared.due_groups(c, now, FLUSH_LIMIT)
        created: list[Notification] = []
        newest: dict[str, int] = {}
        for dest, gk in due:
            if not pgshared.try_lock(c, pgshared.lock_id("group", dest, gk)):
                continue  # an intake is adding to it, or another replica is flushing it
            row = pgshared.group_rows(c, [(dest, gk)]).get((dest, gk))
            if row is None or row.due_at is None or row.due_at > now:
                continue  # flushed by another replica since it was listed
            members = pgshared.group_members(c, dest, gk)
            if not members:
                pgshared.close_window(c, dest, gk)
                continue
            opened = row.opened_at if row.opened_at is not None else members[0][2]
            group = WaitingGroup(
                dest,
                gk,
                row.due_at,
                row.interval,
                opened,
                [m[0] for m in members],
                [m[1] for m in members],
            )
            held = parse_held_group_key(gk)
            if held is not None:
                key = held[1]
                if not pgshared.try_lock(c, pgshared.lock_id("dedup", key)):
                    continue  # an event of the object is being decided: after it
                self._dedup = pgshared.dedup_rows(c, [key])
                self._held, self._held_objects = {}, {}
                self._bad_times = {key: self._bad_times_since(key, group)}
                if not self._release(self.store, group):
                    pgshared.close_window(c, dest, gk)
                    continue
            notification = self._flush_group(self.store, group, now)
            created.append(notification)
            newest[dest] = notification.id
        pgshared.notify(c, newest)
        return created, len(due) >= FLUSH_LIMIT

    # ---- views ----

    def pending_groups(self) -> dict[str, tuple[int, float]]:
        return dict(self._waiting)

    def forget_settled(self, before: float) -> int:
        return 0  # nothing is remembered beyond a transaction
