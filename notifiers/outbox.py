"""The durable outbox's policy: what a batch of the writer (``notifiers.writer``) does.

The writer owns the state that changes with the rows: the per-object de-duplication
state (snapshotted about once a second, and rebuilt after a crash by replaying the events stored
since the snapshot) and the groups waiting for ``group_wait``/``group_interval``. When a group
is due it becomes one ``notifications`` row (its member deliveries point to it) in one
transaction, so a crash can never split or re-shape a notification: after a restart it is sent
again with the same idempotency key.

Rows live behind ``notifiers.storeapi.OutboxStore``: ``notifiers.store.SqliteStore`` (the default,
with pruning and operator actions in ``notifiers.maintenance``) or PostgreSQL, where several
replicas share them (``notifiers.sharedoutbox`` keeps the decisions here and moves the state
into locked rows). The policy does not know which store it writes to.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notifiers.dedup import DedupState, decide, dedup_key
from notifiers.model import BAD_STATUSES, Event, Notification, ThreadAnchor, idempotency_key
from notifiers.noise import (
    held_group_key,
    parse_held_group_key,
    ready_early,
    recovery_cancels,
    release_held,
)
from notifiers.routing import Target
from notifiers.store import DB_NAME, INGEST_CHUNK, SqliteStore, compact_json
from notifiers.storeapi import OutboxStore
from notifiers.writer import GroupCommitWriter, WriterOp

log = logging.getLogger("fluxwatch.bridge.outbox")

SNAPSHOT_SECONDS = 1.0  # how often changed de-duplication state is written


@dataclass(frozen=True, slots=True)
class IngestItem:
    event: Event
    targets: tuple[Target, ...]
    muted: bool = False


@dataclass(frozen=True, slots=True)
class IngestResult:
    event_id: str
    decision: str  # the de-duplication reason, "muted" or "unrouted"
    deliveries: int


@dataclass(slots=True)
class WaitingGroup:
    destination: str
    group_key: str
    due_at: float
    interval: float
    created_at: float
    delivery_ids: list[int] = field(default_factory=list)
    event_seqs: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    notification_id: int
    status: str  # pending | delivered | dead
    attempts: int
    next_attempt_at: float
    error: str
    status_code: int | None
    at: float
    anchor: ThreadAnchor | None = None  # stored in the same transaction as the status


def notification_for(
    group: WaitingGroup,
    events: Sequence[dict[str, Any]],
    beyond: Sequence[tuple[str, str, str]],
    notification_id: int,
    now: float,
) -> Notification:
    """The notification a due group becomes: ``events`` are the listed bodies (up to the
    maximum), ``beyond`` the (id, object key, cluster) of the rest, which still count, name
    their clusters and shape the idempotency key."""
    all_ids = [b["id"] for b in events] + [eid for eid, _o, _c in beyond]
    object_keys = {f"{b['cluster']}/{b['kind']}/{b['namespace']}/{b['name']}" for b in events}
    object_keys.update(okey for _e, okey, _c in beyond)
    clusters = {b["cluster"] for b in events} | {c for _e, _o, c in beyond}
    return Notification(
        id=notification_id,
        destination=group.destination,
        group_key=group.group_key,
        idempotency_key=idempotency_key(group.destination, all_ids),
        created_at=now,
        events=list(events),
        total_events=len(group.event_seqs),
        object_keys=frozenset(object_keys),
        next_attempt_at=now,
        clusters=tuple(sorted(clusters)),
    )


def payload_of(notification: Notification) -> str:
    return json.dumps(notification.events, sort_keys=True, separators=(",", ":"))


NotificationSink = Callable[[list[Notification]], None]


class Outbox(GroupCommitWriter):
    """Owns the database. ``start`` in a running loop; every public coroutine is durable."""

    def __init__(
        self,
        state_dir: Path,
        *,
        synchronous: str = "full",
        dedup_window: float = 3600.0,
        max_events_per_notification: int = 100,
        max_batch: int = 2048,
        clock: Callable[[], float] = time.time,
        on_commit_batch: Callable[[int], None] | None = None,
        store: OutboxStore | None = None,
        on_busy: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            store if store is not None else SqliteStore(state_dir, synchronous=synchronous),
            max_batch=max_batch,
            on_commit_batch=on_commit_batch,
            on_busy=on_busy,
        )
        self.path = state_dir / DB_NAME  # the SQLite file, when the default store is used
        self.dedup_window = dedup_window
        self.max_events = max_events_per_notification
        self.clock = clock
        # writer-thread state
        self._dedup: dict[str, DedupState] = {}
        self._groups: dict[tuple[str, str], WaitingGroup] = {}
        self._due: list[tuple[float, str, str]] = []
        self._last_flush: dict[tuple[str, str], float] = {}
        self._next_delivery = 1
        self._next_notification = 1
        self._next_seq = 1
        self._dirty_dedup: set[str] = set()
        self._next_snapshot = 0.0
        # noise control (notifiers/noise.py): held failures by (destination, route, object)
        # -> (held group key, due), and the bad-event times of objects with a hold
        self._held: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._held_objects: dict[str, set[tuple[str, str, str]]] = {}
        self._bad_times: dict[str, list[float]] = {}

    # ---- lifecycle ----

    def start(self, sink: NotificationSink) -> int:
        """Open, load state; returns how many notifications wait for delivery.

        They stay on disk: the dispatcher loads a bounded window of them (``load_pending``).
        """
        self.store.open()
        try:
            pending = self._load_state()
            # Replays are among ``pending`` now. Not in ``_load_state``: after a failed
            # transaction it reloads too, and a replay cleared there would wait for the next
            # restart.
            self.store.clear_requeued()
        except BaseException:
            self.store.close()
            raise
        self._start_thread(sink)
        return pending

    # ---- public, awaitable operations ----

    async def ingest(self, items: Sequence[IngestItem]) -> list[IngestResult]:
        """Store events; resolves after the transaction that holds them commits."""
        return await self._gather(items)  # type: ignore[no-any-return]

    async def record(self, record: AttemptRecord) -> None:
        await self._submit("record", record)

    async def thread_anchor(self, destination: str, incident: str) -> ThreadAnchor | None:
        """The stored thread anchor of an incident at a destination, if any."""
        return await self.call(lambda store: store.read_thread_anchor(destination, incident))  # type: ignore[no-any-return]

    # ---- writer thread ----

    def _load_state(self) -> int:
        store = self.store
        self._dedup = store.load_dedup()
        snapshot_seq = store.dedup_seq()
        replayed = 0
        for body, decided_at in store.events_since(snapshot_seq):
            event = Event.from_dict(json.loads(body))
            key = dedup_key(event)
            self._dedup[key] = decide(
                self._dedup.get(key), event, decided_at, self.dedup_window
            ).state
            self._dirty_dedup.add(key)
            replayed += 1
        if replayed:
            log.info("replayed %d events into the de-duplication state", replayed)
        self._last_flush = store.group_flushes()
        self._next_delivery, self._next_notification, next_seq = store.next_ids()
        # Never at or below the snapshot's mark, even when prune has deleted every event up to
        # it: a reused seq would be skipped by the replay above after the next crash.
        self._next_seq = max(next_seq, snapshot_seq + 1)
        self._groups = {}
        self._due = []
        for row in store.waiting_deliveries():
            gkey = (row[2], row[3])
            group = self._groups.get(gkey)
            if group is None:
                group = WaitingGroup(row[2], row[3], row[5], row[6], row[4])
                self._groups[gkey] = group
                heapq.heappush(self._due, (group.due_at, row[2], row[3]))
            group.delivery_ids.append(row[0])
            group.event_seqs.append(row[1])
        self._load_held(store)
        return store.pending_notification_count()

    def _load_held(self, store: OutboxStore) -> None:
        """Held failures are pending deliveries in held groups; their objects' bad events are
        read back from the stored events, so a restart neither loses nor shortens a hold."""
        self._held, self._held_objects, self._bad_times = {}, {}, {}
        for (dest, gk), group in self._groups.items():
            parsed = parse_held_group_key(gk)
            if parsed is None:
                continue
            route = store.delivery_route(group.delivery_ids[0])
            key = parsed[1]
            self._held[(dest, route, key)] = (gk, group.due_at)
            self._held_objects.setdefault(key, set()).add((dest, route, key))
            since = group.created_at
            times = [
                at
                for at, body in store.object_events_since(key.split("#", 1)[0], since)
                if json.loads(body).get("status") in BAD_STATUSES
            ]
            self._bad_times[key] = sorted(set(self._bad_times.get(key, [])) | set(times))

    # ids: consecutive in one process; a shared store hands them out (notifiers/sharedoutbox.py)

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _take_delivery_id(self) -> int:
        did = self._next_delivery
        self._next_delivery += 1
        return did

    def _take_notification_id(self, conn: OutboxStore, destination: str) -> int:
        nid = self._next_notification
        self._next_notification += 1
        return nid

    def _wait_timeout(self) -> float | None:
        timeout = super()._wait_timeout()
        if self._due:
            until = max(0.0, self._due[0][0] - self.clock())
            timeout = until if timeout is None else min(timeout, until)
        if self._dirty_dedup:
            until = max(0.0, self._next_snapshot - self.clock())
            timeout = until if timeout is None else min(timeout, until)
        return timeout

    def _final_snapshot(self, conn: OutboxStore) -> None:
        if self.failed is not None:
            return  # replay on the next start covers it
        if not self._dirty_dedup:
            return
        try:
            conn.begin()
            self._snapshot_dedup(conn, self.clock())
            conn.commit()
        except Exception as exc:  # replay on the next start covers it
            log.warning("could not write the final de-duplication snapshot: %s", exc)
            with contextlib.suppress(Exception):
                conn.rollback()

    def _process(self, conn: OutboxStore, batch: list[WriterOp]) -> None:
        results: list[Any] = []
        ingested: list[tuple[asyncio.Future[Any], list[IngestResult]]] = []
        created: list[Notification] = []
        now = self.clock()
        try:
            requests = [req for op in batch if op.kind == "ingest" for req in op.args]
            flat, rows = self._prepare_ingest(
                [item for items, _f in requests for item in items], now
            )
            it = iter(flat)
            ingested = [(fut, [next(it) for _ in items]) for items, fut in requests]
            only_ingest = all(op.kind == "ingest" for op in batch)
            snapshot_due = bool(self._dirty_dedup) and now >= self._next_snapshot
            if (
                only_ingest
                and len(rows) <= INGEST_CHUNK
                and not (self._due and self._due[0][0] <= now)
                and not snapshot_due  # else steady intake would postpone it forever
            ):
                # The common case under load: one statement, which SQLite runs as its own
                # transaction; the GIL is released once for the whole batch. More rows than
                # one chunk would be several statements, so several commits: a failure after
                # the first would store part of a batch whose senders are told to retry.
                conn.write_ingest_rows(rows)
                results = [None] * len(batch)
            else:
                conn.begin()
                conn.write_ingest_rows(rows)
                results = self._run_ops(conn, batch)
                created = self._flush_due(conn, now)
                if self._dirty_dedup and now >= self._next_snapshot:
                    self._snapshot_dedup(conn, now)
                conn.commit()
        except Exception as exc:
            self._transaction_failed(conn, batch, exc)
            return
        if self.on_commit_batch is not None:
            self.on_commit_batch(len(batch) + len(ingested))
        self._complete(batch, results, created, None, ingested)

    def _run_ops(self, conn: OutboxStore, batch: list[WriterOp]) -> list[Any]:
        """The batch's attempt records and calls, inside the open transaction; one result each."""
        results: list[Any] = []
        for op in batch:
            if op.kind == "record":
                self._record(conn, op.args)
                results.append(None)
            elif op.kind == "call":
                results.append(op.args(conn))
            else:
                results.append(None)
        return results

    def _prepare_ingest(
        self, items: list[IngestItem], now: float
    ) -> tuple[list[IngestResult], list[tuple[Any, ...]]]:
        """Decide and lay out the rows; state in memory is updated, the caller writes them."""
        rows: list[tuple[Any, ...]] = []
        results: list[IngestResult] = []
        for item in items:
            event = item.event
            key = dedup_key(event)
            decision = decide(self._dedup.get(key), event, now, self.dedup_window)
            if decision.state is not self._dedup.get(key):
                self._dedup[key] = decision.state
                self._dirty_dedup.add(key)
            reason = decision.reason
            targets = item.targets if decision.send else ()
            if decision.send and not targets:
                reason = "muted" if item.muted else "unrouted"
            seq = self._take_seq()
            target_rows: list[tuple[Any, ...]] = []
            bad = event.status in BAD_STATUSES
            cancelled = 0
            for target in targets:
                group_key, held_due = target.group_key, None
                if target.noise.active:
                    hkey = (target.destination, target.route, key)
                    held = self._held.get(hkey)
                    if not bad:
                        if recovery_cancels(held[1] if held else None, now):
                            cancelled += 1  # the held failure is dropped at its due time
                            continue
                    else:
                        if held is None:
                            held = (
                                held_group_key(target.group_key, target.noise, key),
                                now + target.noise.hold_seconds(),
                            )
                            self._held[hkey] = held
                            self._held_objects.setdefault(key, set()).add(hkey)
                        group_key, held_due = held
                did = self._take_delivery_id()
                gkey = (target.destination, group_key)
                group = self._groups.get(gkey)
                if group is None:
                    last = self._last_flush.get(gkey)
                    if held_due is not None:
                        due = held_due
                    elif last is not None and now - last < target.group_interval:
                        due = last + target.group_interval
                    else:
                        due = now + target.group_wait
                    group = WaitingGroup(
                        target.destination, group_key, due, target.group_interval, now
                    )
                    self._groups[gkey] = group
                    heapq.heappush(self._due, (due, target.destination, group_key))
                group.delivery_ids.append(did)
                group.event_seqs.append(seq)
                target_rows.append(
                    (
                        did,
                        target.destination,
                        group_key,
                        target.route,
                        now,
                        group.due_at,
                        target.group_interval,
                    )
                )
            if cancelled and not target_rows:
                reason = "cancelled_by_recovery"
            if bad and key in self._held_objects:
                self._note_bad(key, now)
            raw = (
                event.raw_body.decode("utf-8", "replace")
                if event.raw_body
                else json.dumps(event.raw, separators=(",", ":"))
            )
            rows.append(
                (
                    seq,
                    event.id,
                    event.received_at,
                    event.source,
                    event.object_key,
                    reason,
                    compact_json(
                        event.fields(),
                        event.received_at,
                        event.occurred_at,
                        event.latency_seconds,
                    ),
                    raw,
                    # fields 4-6 of a target row are its floats (created, due, interval)
                    compact_json(target_rows, *(f for t in target_rows for f in t[4:]))
                    if target_rows
                    else "[]",
                )
            )
            results.append(IngestResult(event.id, reason, len(target_rows)))
        return results, rows

    def forget_settled(self, before: float) -> int:
        """Drop in-memory de-duplication state of healthy objects not seen since ``before``.

        Runs in the writer thread (through ``call``) alongside ``prune``, which deletes the same
        rows on disk, so memory stays bounded by the objects seen within the retention.
        """
        stale = [k for k, s in self._dedup.items() if not s.was_bad and s.at < before]
        for key in stale:
            del self._dedup[key]
            self._dirty_dedup.discard(key)
        # Groups last flushed that long ago: prune deletes their rows too (far beyond any
        # group_interval), so the memory of every group ever seen does not grow forever.
        for gkey in [g for g, at in self._last_flush.items() if at < before]:
            del self._last_flush[gkey]
        return len(stale)

    def _snapshot_dedup(self, conn: OutboxStore, now: float) -> None:
        """Persist the de-duplication state of objects that changed, and up to which event.

        The state is not written per event: random-key upserts cost a WAL frame each. Instead
        it is snapshotted every second or so, and after a crash the events stored since the
        snapshot are replayed through the same pure ``decide`` (see ``_load_state``).
        """
        rows = [
            (k, s.status, s.reason, s.revision, s.at, int(s.was_bad), s.applied_revision)
            for k in sorted(self._dirty_dedup)
            if (s := self._dedup.get(k)) is not None
        ]
        conn.write_dedup_snapshot(rows, self._next_seq - 1)
        self._dirty_dedup.clear()
        self._next_snapshot = now + SNAPSHOT_SECONDS

    def _flush_due(self, conn: OutboxStore, now: float) -> list[Notification]:
        created: list[Notification] = []
        while self._due and self._due[0][0] <= now:
            due, dest, gk = heapq.heappop(self._due)
            group = self._groups.get((dest, gk))
            if group is None or group.due_at != due:
                continue
            del self._groups[(dest, gk)]
            if parse_held_group_key(gk) is not None and not self._release(conn, group):
                continue
            created.append(self._flush_group(conn, group, now))
        return created

    def _note_bad(self, key: str, now: float) -> None:
        """A bad event of an object with a held failure: count it; release early if due."""
        self._bad_times.setdefault(key, []).append(now)
        for dest, route, _obj in self._held_objects.get(key, ()):
            held = self._held.get((dest, route, key))
            group = self._groups.get((dest, held[0])) if held else None
            if group is None or group.due_at <= now:
                continue
            parsed = parse_held_group_key(group.group_key)
            assert parsed is not None
            if ready_early(parsed[0], self._bad_times[key], group.created_at, now):
                group.due_at = now
                heapq.heappush(self._due, (now, dest, group.group_key))

    def _release(self, conn: OutboxStore, group: WaitingGroup) -> bool:
        """End of a hold: True to notify; False drops the held deliveries (``cancelled``)."""
        parsed = parse_held_group_key(group.group_key)
        assert parsed is not None
        policy, key = parsed
        state = self._dedup.get(key)
        send, why = release_held(
            policy,
            still_bad=state is not None and state.status in BAD_STATUSES,
            bad_times=self._bad_times.get(key, []),
            held_at=group.created_at,
        )
        for hkey in list(self._held_objects.get(key, ())):
            if self._held.get(hkey, ("",))[0] == group.group_key:
                del self._held[hkey]
                self._held_objects[key].discard(hkey)
        if not self._held_objects.get(key):
            self._held_objects.pop(key, None)
            self._bad_times.pop(key, None)
        if send:
            return True
        conn.cancel_deliveries(group.delivery_ids)
        log.info("%s: held failure of %s dropped (%s)", group.destination, key, why)
        return False

    def _flush_group(self, conn: OutboxStore, group: WaitingGroup, now: float) -> Notification:
        listed = group.event_seqs[: self.max_events]
        bodies = conn.event_bodies(listed)
        rest = group.event_seqs[len(listed) :]
        summaries = conn.event_summaries(rest) if rest else []
        notification = notification_for(
            group,
            [bodies[s] for s in listed if s in bodies],
            summaries,
            self._take_notification_id(conn, group.destination),
            now,
        )
        conn.insert_notification(notification, group.delivery_ids, payload_of(notification))
        self._last_flush[(group.destination, group.group_key)] = now
        return notification

    def _record(self, conn: OutboxStore, rec: AttemptRecord) -> None:
        conn.record_attempt(
            rec.notification_id,
            rec.status,
            rec.attempts,
            rec.next_attempt_at,
            rec.error,
            rec.status_code,
            rec.at,
            rec.anchor,
        )

    # ---- views for metrics (called from the loop; list() copies are atomic under the GIL) ----

    def pending_groups(self) -> dict[str, tuple[int, float]]:
        """Per destination: deliveries waiting in groups and the oldest one's creation time."""
        out: dict[str, tuple[int, float]] = {}
        for group in list(self._groups.values()):
            count, oldest = out.get(group.destination, (0, group.created_at))
            out[group.destination] = (
                count + len(group.delivery_ids),
                min(oldest, group.created_at),
            )
        return out
