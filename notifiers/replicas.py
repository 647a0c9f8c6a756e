"""One replica's part in a shared PostgreSQL outbox: destination leases and the listener.

Every ``lease / 3`` the replica renews the leases it holds, hands over the destinations beyond
its fair share once nothing of theirs is in flight, and claims free or expired ones
(``notifiers.pgshared.lease_round``). The dispatcher delivers exactly the destinations held.
If the database cannot be reached long enough for the leases to run out, the replica stops
delivering them: another replica may have taken them over.

A ``LISTEN`` session tells the replica when another one stored a notification for a destination
it holds, so delivery does not wait for a poll. Notices are an optimisation: each lease round
(and each reconnect of the listener) also looks at the held destinations' backlog on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence

import psycopg

from notifiers import pgshared
from notifiers.delivery import Dispatcher
from notifiers.metrics import BridgeMetrics
from notifiers.pgstore import PostgresSettings
from notifiers.sharedoutbox import SharedOutbox

log = logging.getLogger("fluxwatch.bridge.replicas")

LISTEN_BACKOFF = (0.2, 5.0)  # first and longest wait between listener reconnects


def replica_id() -> str:
    """``FLUXWATCH_REPLICA_ID`` (the pod name in the Helm chart), else host and process."""
    return os.environ.get("FLUXWATCH_REPLICA_ID", "").strip() or (
        f"{socket.gethostname()}-{os.getpid()}"
    )


class Replica:
    def __init__(
        self,
        outbox: SharedOutbox,
        dispatcher: Dispatcher,
        metrics: BridgeMetrics,
        settings: PostgresSettings,
        *,
        destinations: Sequence[str],
        name: str | None = None,
    ) -> None:
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.settings = settings
        self.destinations = sorted(destinations)
        self.name = name or replica_id()
        self.lease = settings.lease
        self._valid_until = 0.0  # monotonic: the held leases surely last until then
        self._tasks: list[asyncio.Task[None]] = []
        metrics.add_replica_metrics()
        dispatcher.hold({})  # nothing is delivered before the first lease round

    async def start(self) -> None:
        """The first lease round, then the rounds and the listener in the background."""
        with contextlib.suppress(Exception):  # logged; the next round tries again
            await self.lease_round()
        self._tasks = [
            asyncio.create_task(self._keep(), name="fluxwatch-leases"),
            asyncio.create_task(self._listen(), name="fluxwatch-outbox-listener"),
        ]

    async def stop(self) -> None:
        """After the dispatcher stopped: hand every destination over now, not after the lease."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.outbox.alive:
            try:
                await self.outbox.call(
                    lambda _s: pgshared.release_all(self.outbox.pg.conn, self.name)
                )
            except Exception as exc:  # the leases run out by themselves
                log.warning("could not hand the destinations over at stop: %s", exc)

    async def lease_round(self) -> None:
        release = self.dispatcher.drained()
        state = {
            name: pgshared.HandedOver(opened, paused)
            for name, (opened, paused) in self.dispatcher.lease_state().items()
        }
        started = time.monotonic()
        try:
            result: pgshared.LeaseRound = await self.outbox.call(
                lambda _s: pgshared.lease_round(
                    self.outbox.pg.conn,
                    replica=self.name,
                    lease=self.lease,
                    destinations=self.destinations,
                    state=state,
                    release=release,
                )
            )
        except Exception as exc:
            log.warning("could not renew the destination leases: %s", exc)
            if time.monotonic() >= self._valid_until and self.dispatcher.held:
                log.warning("destination leases ran out; delivery stops until the database is back")
                self.dispatcher.hold({})
                self._observe_held()
            raise
        took = time.monotonic() - started
        self._valid_until = started + self.lease  # renewed no earlier than ``started``
        assert self.metrics.claim_seconds is not None
        assert self.metrics.replicas is not None
        assert self.metrics.lease_takeovers is not None
        self.metrics.claim_seconds.observe(took)
        self.metrics.replicas.set(result.live_replicas)
        if result.taken_over:
            self.metrics.lease_takeovers.inc(len(result.taken_over))
            log.warning(
                "took over %s: the replica holding it stopped renewing its lease",
                ", ".join(result.taken_over),
            )
        for name in result.gained:
            if name not in result.taken_over:
                log.info("now delivering %s", name)
        self.dispatcher.hold(
            {d: (h.breaker_opened_at, h.paused_until) for d, h in result.held.items()}
        )
        share = pgshared.fair_share(len(self.destinations), result.live_replicas)
        extra = sorted(result.held)[share:]
        if extra:
            self.dispatcher.drain(extra)  # handed over by a later round, once idle
        self._observe_held()

    def _observe_held(self) -> None:
        assert self.metrics.destinations_owned is not None
        self.metrics.destinations_owned.set(len(self.dispatcher.held or ()))

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(Exception):  # logged by lease_round
                await self.lease_round()
            self._look_at_disk()

    def _look_at_disk(self) -> None:
        """The safety net under lost notices: held destinations reload their backlog."""
        for name in self.dispatcher.held or ():
            self.dispatcher.stored_elsewhere(name, 0)

    async def _listen(self) -> None:
        wait = LISTEN_BACKOFF[0]
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.settings.dsn(), autocommit=True, **self.settings.connect_args()
                )
            except Exception as exc:
                log.warning("outbox listener cannot connect: %s", _first_line(exc))
                await asyncio.sleep(wait)
                wait = min(wait * 2, LISTEN_BACKOFF[1])
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {pgshared.CHANNEL}")
                    wait = LISTEN_BACKOFF[0]
                    self._look_at_disk()  # notices sent while it was not listening
                    async for notice in conn.notifies():
                        if notice.pid == self.outbox.backend_pid:
                            continue  # this replica's own flush: the dispatcher has it
                        parsed = pgshared.parse_notice(notice.payload)
                        if parsed is not None:
                            self.dispatcher.stored_elsewhere(*parsed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox listener lost its connection: %s", _first_line(exc))
                await asyncio.sleep(wait)
                wait = min(wait * 2, LISTEN_BACKOFF[1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
