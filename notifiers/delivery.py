"""The delivery loop: pick due notifications, send them, record the outcome durably.

Per destination it keeps a bounded window of the oldest undelivered notifications in id order
(the rest wait in the outbox and are loaded as the window drains, so an outage of hours costs
disk, not memory), a circuit breaker, a token bucket and a cap on concurrent attempts, so a
dead or slow destination only ever delays itself. While the breaker is open, one notification
at a time probes the destination; a failed probe does not spend its attempts, so an outage of
any length ends with everything delivered (only ``max_age`` still applies).
Ordering per object and destination is kept: a notification waits while an older one about one
of the same objects is in flight or waiting for a retry. The database row is updated (and
committed) after every attempt before the next attempt of the same notification can start, so
a delivery recorded as done is never sent again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from notifiers.config import DestinationConfig
from notifiers.metrics import BridgeMetrics, DestinationView
from notifiers.model import Fail, Notification, Ok, Outcome, Retry
from notifiers.outbox import AttemptRecord, Outbox
from notifiers.providers import Provider, ProviderContext
from notifiers.retry import (
    Breaker,
    Bucket,
    Dead,
    Delivered,
    NextStep,
    Reschedule,
    breaker_after,
    breaker_started,
    bucket_take,
    next_step,
)

log = logging.getLogger("fluxwatch.bridge.delivery")

SCAN_LIMIT = 2000  # notifications examined per destination per pass; the rest wait their turn
MEMORY_WINDOW = 500  # undelivered notifications held in memory per destination; the rest on disk


@dataclass(slots=True)
class _Dest:
    config: DestinationConfig
    provider: Provider
    queue: dict[int, Notification] = field(default_factory=dict)
    in_flight: set[int] = field(default_factory=set)
    breaker: Breaker = field(default_factory=Breaker)
    bucket: Bucket = field(default_factory=lambda: Bucket(0.0, 0.0))
    paused_until: float = 0.0  # set by Retry-After: the whole destination waits
    dead: int = 0
    last_error: str = ""
    # The window: ``queue`` holds the lowest-id pending notifications; ``cursor`` is the highest
    # id it covers. ``on_disk`` says more pending ones wait in the outbox beyond it.
    cursor: int = 0
    on_disk: bool = True  # until the first load says otherwise
    skipped_max: int = 0  # highest id handed over while the window was full (left on disk)
    refilling: bool = False
    disk_pending: tuple[int, float] | None = None  # (events, oldest created_at), last poll


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        destinations: Mapping[str, DestinationConfig],
        providers: Mapping[str, Provider],
        ctx: ProviderContext,
        metrics: BridgeMetrics,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        window: int | None = None,
    ) -> None:
        self.outbox = outbox
        self.window = window if window is not None else MEMORY_WINDOW
        self.ctx = ctx
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.dests: dict[str, _Dest] = {}
        for name, cfg in destinations.items():
            self.dests[name] = _Dest(
                cfg, providers[name], bucket=Bucket(float(cfg.rate_limit.burst), clock())
            )
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.on_delivered: Callable[[Notification], None] | None = None
        self.next_wake_at = 0.0  # clock time the loop will look again (without a wake-up)
        self.attempts_finished = 0
        self.passes = 0
        self._looked = False  # a pass has run since the last change
        # Replicas sharing an outbox (notifiers/replicas.py) each deliver the destinations whose
        # lease they hold; None: this bridge delivers every destination.
        self.held: set[str] | None = None
        self._draining: set[str] = set()  # held, being handed to another replica

    # ---- feeding ----

    def add(self, notifications: Iterable[Notification]) -> None:
        """Newly created notifications (committed in the outbox). Those beyond a full window
        stay on disk only and are loaded, in id order, as the window drains."""
        for n in notifications:
            dest = self.dests.get(n.destination)
            if dest is None:
                log.warning(
                    "notification %d names unknown destination %s; it stays queued in the "
                    "outbox until the destination is configured again",
                    n.id,
                    n.destination,
                )
                continue
            self.metrics.child(self.metrics.notifications, n.destination).inc()
            if self.held is not None:
                # Replicas: another one may have committed a lower id of this destination that
                # is not loaded yet; reading the window from the database keeps id order.
                self.stored_elsewhere(n.destination, n.id)
                continue
            if dest.on_disk or len(dest.queue) >= self.window:
                dest.on_disk = True
                dest.skipped_max = max(dest.skipped_max, n.id)
                continue
            self._hold(dest, [n])
        self._changed()

    def requeued(self, ids_by_destination: Mapping[str, Iterable[int]]) -> None:
        """Notifications an operator replayed: reload the window from the lowest of them."""
        for name, ids in ids_by_destination.items():
            dest = self.dests.get(name)
            lowest = min(ids, default=None)
            if dest is None or lowest is None:
                continue
            dest.cursor = min(dest.cursor, lowest - 1)
            dest.on_disk = True
        self._changed()

    def rescan(self) -> None:
        """The outbox reconnected to its store: a transaction whose commit was not confirmed
        may have stored notifications nobody was handed, so reload every window from the start
        (those already held are left out)."""
        for dest in self.dests.values():
            dest.cursor = 0
            dest.on_disk = True
        self._changed()

    # ---- replicas: which destinations this one delivers ----

    def _delivers(self, name: str) -> bool:
        return self.held is None or (name in self.held and name not in self._draining)

    def hold(self, held: Mapping[str, tuple[float | None, float]]) -> None:
        """The destinations this replica delivers from now on, each with the circuit breaker's
        opening time and the Retry-After pause its previous holder recorded."""
        before = self.held or set()
        for name in sorted(held.keys() - before):
            dest = self.dests.get(name)
            if dest is None:
                continue
            opened_at, paused_until = held[name]
            dest.queue, dest.cursor, dest.skipped_max, dest.on_disk = {}, 0, 0, True
            if opened_at is not None and not dest.breaker.is_open:
                dest.breaker = Breaker(opened_at=opened_at)  # the outage is not over for us
            dest.paused_until = max(dest.paused_until, paused_until)
        for name in before - held.keys():
            dest = self.dests.get(name)
            if dest is not None:  # its in-flight attempts finish; nothing new starts
                dest.queue, dest.cursor, dest.skipped_max, dest.on_disk = {}, 0, 0, True
        self.held = set(held)
        self._draining &= self.held
        self._changed()

    def drain(self, names: Iterable[str]) -> None:
        """Start no new attempt for these: they go to another replica once ``drained``."""
        self._draining |= set(names) & (self.held or set())
        self._changed()

    def drained(self) -> list[str]:
        return sorted(n for n in self._draining if not self.dests[n].in_flight)

    def lease_state(self) -> dict[str, tuple[float | None, float]]:
        """What the next holder of each held destination should know."""
        return {
            name: (self.dests[name].breaker.opened_at, self.dests[name].paused_until)
            for name in sorted(self.held or ())
            if name in self.dests
        }

    def stored_elsewhere(self, destination: str, notification_id: int) -> None:
        """Another replica stored (or an operator replayed) a notification for ``destination``."""
        dest = self.dests.get(destination)
        if dest is None or not self._delivers(destination):
            return
        if notification_id in dest.queue or notification_id in dest.in_flight:
            return
        if notification_id <= dest.cursor:  # a replay of one already passed
            dest.cursor = notification_id - 1
        dest.on_disk = True
        dest.skipped_max = max(dest.skipped_max, notification_id)
        self._changed()

    def _hold(self, dest: _Dest, notifications: Iterable[Notification]) -> None:
        resort = False
        for n in notifications:
            if dest.queue and n.id < next(reversed(dest.queue)):
                resort = True
            dest.queue[n.id] = n
            dest.cursor = max(dest.cursor, n.id)
        if resort:
            dest.queue = dict(sorted(dest.queue.items()))

    def _refill_if_low(self, dest: _Dest) -> None:
        if not dest.on_disk or dest.refilling or len(dest.queue) > self.window // 2:
            return
        dest.refilling = True
        task = asyncio.create_task(self._refill(dest), name=f"refill-{dest.config.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refill(self, dest: _Dest) -> None:
        name, after = dest.config.name, dest.cursor
        limit = self.window - len(dest.queue)
        held = list(dest.queue)
        try:
            rows = await self.outbox.call(
                lambda store: store.load_pending(name, after=after, exclude=held, limit=limit)
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not load waiting notifications for %s; will try again", name)
            rows = None
        finally:
            dest.refilling = False
        if rows is not None:
            self._hold(dest, (n for n in rows if n.id not in dest.queue))
            if len(rows) < limit:
                # Every pending notification above ``after`` is held now, except those created
                # while the query ran (handed to ``add`` with the window still marked on disk).
                dest.cursor = max(dest.cursor, *dest.queue) if dest.queue else dest.cursor
                dest.on_disk = dest.skipped_max > dest.cursor
        self._changed()

    def set_disk_pending(self, pending: Mapping[str, tuple[int, float]]) -> None:
        """Per destination (events, oldest created_at) of every pending notification on disk."""
        for name, dest in self.dests.items():
            dest.disk_pending = pending.get(name)

    def set_dead_counts(self, counts: Mapping[str, int]) -> None:
        for name, dest in self.dests.items():
            dest.dead = counts.get(name, 0)

    # ---- running ----

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="fluxwatch-dispatcher")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            now = self.clock()
            wait = self._pass(now)
            self.next_wake_at = now + wait
            self.passes += 1
            self._looked = True
            # A timer that sets the event, rather than asyncio.wait_for: on Python 3.11
            # wait_for can lose a cancellation that races with the wake-up, hanging stop().
            timer = loop.call_later(wait, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def _pass(self, now: float) -> float:
        """Start every attempt allowed now; return seconds until something may change."""
        next_wake = 5.0
        for name, dest in self.dests.items():
            if not self._delivers(name):
                continue
            self._refill_if_low(dest)
            if not dest.queue:
                continue
            cfg = dest.config
            if dest.paused_until > now:
                next_wake = min(next_wake, dest.paused_until - now)
                continue
            if not dest.breaker.allows(now, cfg.circuit_breaker.cooldown):
                if dest.breaker.opened_at is not None and not dest.breaker.probing:
                    next_wake = min(
                        next_wake, dest.breaker.opened_at + cfg.circuit_breaker.cooldown - now
                    )
                continue
            blocked: set[str] = set()
            for n in itertools.islice(dest.queue.values(), SCAN_LIMIT):
                if n.id in dest.in_flight:
                    blocked |= n.object_keys
                    continue
                if n.next_attempt_at > now:
                    next_wake = min(next_wake, n.next_attempt_at - now)
                    blocked |= n.object_keys
                    continue
                if not blocked.isdisjoint(n.object_keys):
                    blocked |= n.object_keys
                    continue
                if len(dest.in_flight) >= cfg.max_in_flight:
                    break
                if dest.breaker.is_open and dest.in_flight:
                    break  # half-open: exactly one probe at a time
                ok, dest.bucket, wait = bucket_take(
                    dest.bucket, now, cfg.rate_limit.per_second, cfg.rate_limit.burst
                )
                if not ok:
                    next_wake = min(next_wake, wait)
                    break
                probe = dest.breaker.is_open
                dest.breaker = breaker_started(dest.breaker)
                dest.in_flight.add(n.id)
                blocked |= n.object_keys
                task = asyncio.create_task(self._attempt(dest, n, probe), name=f"deliver-{n.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if dest.breaker.is_open:
                    break
        return max(0.001, next_wake)

    async def _attempt(self, dest: _Dest, n: Notification, probe: bool = False) -> None:
        """One attempt. A ``probe`` is sent while the breaker is open, to learn whether the
        destination is back: when it is not, the notification keeps its attempts and its due
        time, since the outage, not the notification, failed."""
        cfg = dest.config
        started = self.clock()
        try:
            outcome: Outcome = await dest.provider.send(n, self.ctx, cfg.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a provider bug must not kill the loop; retry later
            log.exception("destination %s raised while sending notification %d", cfg.name, n.id)
            outcome = Retry(f"internal error: {type(exc).__name__}")
        now = self.clock()
        self.metrics.child(self.metrics.attempt_seconds, cfg.name).observe(max(0.0, now - started))
        policy = cfg.retry
        transport_ok = not isinstance(outcome, Retry)
        spent = not (probe and not transport_ok)
        attempts = n.attempts + 1 if spent else n.attempts
        step: NextStep = Reschedule(n.next_attempt_at, "probe")
        if spent:
            step = next_step(
                outcome,
                attempts=attempts,
                created_at=n.retry_age_from,
                now=now,
                initial=policy.initial_backoff,
                multiplier=policy.multiplier,
                cap=policy.max_backoff,
                max_attempts=policy.max_attempts,
                max_age=policy.max_age,
                max_retry_after=policy.max_retry_after,
                draw=self.rng.random(),
            )
        code = outcome.status_code if isinstance(outcome, Retry | Fail) else None
        error = "" if isinstance(outcome, Ok) else outcome.reason
        if isinstance(step, Delivered):
            status, at = "delivered", now
        elif isinstance(step, Dead):
            status, at, error = "dead", now, step.reason
        else:
            assert isinstance(step, Reschedule)
            status, at = "pending", step.at
        try:
            await self.outbox.record(
                AttemptRecord(
                    n.id,
                    status,
                    attempts,
                    at,
                    error[:1000],
                    code,
                    now,
                    anchor=outcome.anchor if isinstance(outcome, Ok) else None,
                )
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "could not record the attempt for notification %d; it will be retried", n.id
            )
            status, at = "pending", now + 1.0
        # memory follows the disk
        dest.in_flight.discard(n.id)
        self.attempts_finished += 1
        dest.breaker = breaker_after(dest.breaker, transport_ok, now, cfg.circuit_breaker.failures)
        if isinstance(outcome, Retry) and outcome.after is not None:
            dest.paused_until = max(
                dest.paused_until, now + min(outcome.after, policy.max_retry_after)
            )
        if status == "pending":
            dest.queue[n.id] = replace(n, attempts=attempts, next_attempt_at=at)
            self.metrics.child(self.metrics.deliveries, cfg.name, "retry").inc()
            if error != dest.last_error:  # log when the error changes, not on every retry
                log.warning("destination %s: %s (will retry)", cfg.name, error)
                dest.last_error = error
        else:
            dest.queue.pop(n.id, None)
            self.metrics.child(self.metrics.deliveries, cfg.name, status).inc()
            if status == "dead":
                dest.dead += 1
                log.error(
                    "dead-lettered notification %d to %s after %d attempts (%d events): %s",
                    n.id,
                    cfg.name,
                    attempts,
                    n.total_events,
                    error,
                )
            else:
                dest.last_error = ""
                log.info(
                    "delivered notification %d to %s (%d events, attempt %d, %s)",
                    n.id,
                    cfg.name,
                    n.total_events,
                    attempts,
                    outcome.detail if isinstance(outcome, Ok) and outcome.detail else "ok",
                )
                if self.on_delivered is not None:
                    self.on_delivered(n)
        self._changed()

    # ---- views ----

    def destinations_view(self) -> dict[str, DestinationView]:
        now = self.clock()
        groups = self.outbox.pending_groups()
        out: dict[str, DestinationView] = {}
        for name, dest in self.dests.items():
            waiting, oldest_group = groups.get(name, (0, now))
            queued = list(dest.queue.values())
            events = sum(n.total_events for n in queued)
            oldest = min([oldest_group, *(n.created_at for n in queued[:1])])
            if dest.on_disk and dest.disk_pending is not None:
                # The window shows only part of the backlog: the outbox's count covers it all.
                events = max(events, dest.disk_pending[0])
                oldest = min(oldest, dest.disk_pending[1])
            out[name] = DestinationView(
                queued=waiting + events,
                oldest_pending_age=max(0.0, now - oldest) if (waiting or events) else 0.0,
                dead=dest.dead,
                circuit_open=dest.breaker.is_open,
            )
        return out

    def idle(self) -> bool:
        return all(
            not d.queue and not d.on_disk for n, d in self.dests.items() if self._delivers(n)
        )

    def wake(self) -> None:
        """Look at the queues now (the clock moved, or something changed outside)."""
        self._changed()

    def _changed(self) -> None:
        self._looked = False
        self._wake.set()

    def settled(self) -> bool:
        """Nothing in flight, no load from disk running, and the loop has looked at everything
        that happened: it sleeps until ``next_wake_at`` unless woken."""
        return self._looked and all(
            not d.in_flight and not d.refilling for d in self.dests.values()
        )
