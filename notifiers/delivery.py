"""The delivery loop: pick due notifications, send them, record the outcome durably.

Per destination it keeps the undelivered notifications in id order, a circuit breaker, a token
bucket and a cap on concurrent attempts, so a dead or slow destination only ever delays itself.
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
    Reschedule,
    breaker_after,
    breaker_started,
    bucket_take,
    next_step,
)

log = logging.getLogger("fluxwatch.bridge.delivery")

SCAN_LIMIT = 2000  # notifications examined per destination per pass; the rest wait their turn


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
    ) -> None:
        self.outbox = outbox
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

    # ---- feeding ----

    def add(self, notifications: Iterable[Notification]) -> None:
        resort: set[str] = set()
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
            if dest.queue and n.id < next(reversed(dest.queue)):
                resort.add(n.destination)
            dest.queue[n.id] = n
            self.metrics.child(self.metrics.notifications, n.destination).inc()
        for name in resort:
            dest = self.dests[name]
            dest.queue = dict(sorted(dest.queue.items()))
        self._wake.set()

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
            wait = self._pass(self.clock())
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
        for dest in self.dests.values():
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
                dest.breaker = breaker_started(dest.breaker)
                dest.in_flight.add(n.id)
                blocked |= n.object_keys
                task = asyncio.create_task(self._attempt(dest, n), name=f"deliver-{n.id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                if dest.breaker.is_open:
                    break
        return max(0.001, next_wake)

    async def _attempt(self, dest: _Dest, n: Notification) -> None:
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
        attempts = n.attempts + 1
        policy = cfg.retry
        step = next_step(
            outcome,
            attempts=attempts,
            created_at=n.created_at,
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
        transport_ok = not isinstance(outcome, Retry)
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
                log.error("destination %s: notification %d is dead: %s", cfg.name, n.id, error)
            else:
                dest.last_error = ""
                if self.on_delivered is not None:
                    self.on_delivered(n)
        self._wake.set()

    # ---- views ----

    def destinations_view(self) -> dict[str, DestinationView]:
        now = self.clock()
        groups = self.outbox.pending_groups()
        out: dict[str, DestinationView] = {}
        for name, dest in self.dests.items():
            waiting, oldest_group = groups.get(name, (0, now))
            queued = list(dest.queue.values())
            oldest = min([oldest_group, *(n.created_at for n in queued[:1])])
            out[name] = DestinationView(
                queued=waiting + sum(n.total_events for n in queued),
                oldest_pending_age=max(0.0, now - oldest) if (waiting or queued) else 0.0,
                dead=dest.dead,
                circuit_open=dest.breaker.is_open,
            )
        return out

    def idle(self) -> bool:
        return all(not d.queue for d in self.dests.values())
