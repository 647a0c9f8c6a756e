"""The outbox's writer: one thread, one database connection, group commit.

Why one thread: SQLite allows one writer at a time, and batching every operation that arrives
while the previous transaction commits into the next one (group commit) turns thousands of intake
requests per second into tens of fsyncs; on PostgreSQL the same batching makes one replica's
intake a few round trips per batch instead of per request. The event loop never blocks on the
database: it hands operations over a queue and awaits a future that resolves after ``COMMIT``.

This module is the machinery only: the queue, the batches, completions travelling back to the
loop, and the reconnect with backoff after the store failed. What a batch does is the policy's
``_process`` (``notifiers.outbox``, ``notifiers.sharedoutbox``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from notifiers.storeapi import OutboxStore

log = logging.getLogger("fluxwatch.bridge.outbox")

RECOVER_BACKOFF = (0.1, 5.0)  # first and longest wait between reconnects to a failed store
POLL_SECONDS = 0.0005  # how often the loop looks for finished transactions while it waits


class WriterOp:
    __slots__ = ("args", "future", "kind")

    def __init__(self, kind: str, args: Any, future: asyncio.Future[Any] | None) -> None:
        self.kind = kind  # ingest | record | call | noop (the writer's own timer)
        self.args = args
        self.future = future


class OutboxError(Exception):
    """The transaction holding this operation failed; nothing of it was stored."""


class GroupCommitWriter:
    """Runs every queued operation of a batch in one transaction of ``store``, in one thread."""

    def __init__(
        self,
        store: OutboxStore,
        *,
        max_batch: int,
        on_commit_batch: Callable[[int], None] | None,
        on_busy: Callable[[float], None] | None,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.on_commit_batch = on_commit_batch
        self.on_busy = on_busy  # seconds of each turn of the writer's work, for its use ratio
        self._queue: queue.SimpleQueue[WriterOp | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: Callable[[list[Any]], None] = lambda _n: None
        # Set when the store failed and the state could not be reloaded (its database is
        # unreachable): operations fail at once, and the writer reconnects with backoff.
        self.failed: BaseException | None = None
        self._recover_at = 0.0
        self._recover_wait = RECOVER_BACKOFF[0]
        self.on_reconnect: Callable[[], None] | None = None  # called in the loop
        self._gathered: list[tuple[Any, asyncio.Future[Any]]] = []
        self._gather_scheduled = False
        # Completions travel back through a deque the loop polls while it waits for any,
        # instead of one call_soon_threadsafe (a self-pipe write) per transaction.
        self._done: collections.deque[tuple[Callable[[], None], int]] = collections.deque()
        self._outstanding = 0
        self._polling: asyncio.TimerHandle | None = None

    # ---- what the policy provides ----

    def _load_state(self) -> int:
        """(Re)load what the policy keeps beside the rows; returns the pending count."""
        raise NotImplementedError

    def _process(self, conn: OutboxStore, batch: list[WriterOp]) -> None:
        """Run the batch in one transaction, then ``_complete`` it (or ``_transaction_failed``)."""
        raise NotImplementedError

    def _final_snapshot(self, conn: OutboxStore) -> None:
        """Last writes before the thread ends (nothing by default)."""

    def _wait_timeout(self) -> float | None:
        """How long the writer may sleep when nothing is queued (None: until something is)."""
        if self.failed is not None:
            return max(0.0, self._recover_at - time.monotonic())
        return None

    # ---- lifecycle ----

    def _start_thread(self, sink: Callable[[list[Any]], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name="fluxwatch-outbox", daemon=True)
        self._thread.start()

    async def _gather(self, items: Any) -> Any:
        """Hand ``items`` to the writer with every other request of this loop iteration, as
        one operation (a thread wake-up, a futex call, saved per request)."""
        if self._thread is None or self._loop is None:
            raise RuntimeError("the outbox is not running")
        future: asyncio.Future[Any] = self._loop.create_future()
        self._gathered.append((items, future))
        if not self._gather_scheduled:
            self._gather_scheduled = True
            self._loop.call_soon(self._hand_over)
        return await future

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None
        if self._polling is not None:
            self._polling.cancel()
            self._polling = None
        while self._done:  # transactions that committed just before the writer stopped
            resolve, count = self._done.popleft()
            self._outstanding -= count
            resolve()
        self.store.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.failed is None

    async def call(self, fn: Callable[[OutboxStore], Any]) -> Any:
        """Run ``fn(store)`` inside the writer's next transaction."""
        return await self._submit("call", fn)

    async def _submit(self, kind: str, args: Any) -> Any:
        if self._thread is None or self._loop is None:
            raise RuntimeError("the outbox is not running")
        future: asyncio.Future[Any] = self._loop.create_future()
        self._track()
        self._queue.put(WriterOp(kind, args, future))
        return await future

    def _hand_over(self) -> None:
        gathered, self._gathered = self._gathered, []
        self._gather_scheduled = False
        self._track()
        self._queue.put(WriterOp("ingest", gathered, None))

    def _track(self) -> None:
        self._outstanding += 1
        if self._polling is None and self._loop is not None:
            self._polling = self._loop.call_later(POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        self._polling = None
        while self._done:
            resolve, count = self._done.popleft()
            self._outstanding -= count
            resolve()
        if self._outstanding > 0 and self._loop is not None:
            self._polling = self._loop.call_later(POLL_SECONDS, self._poll)

    def _run(self) -> None:  # the writer thread
        conn = self.store
        while True:
            timeout = self._wait_timeout()
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = WriterOp("noop", None, None)
            if first is None:
                self._final_snapshot(conn)
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            started = time.perf_counter()
            if self.failed is not None and not self._recover():
                # Nothing is decided against state that may not match the database: every
                # operation fails now (intake answers 503), none waits for the reconnect.
                self._complete(batch, None, [], self.failed)
            else:
                self._process(conn, batch)
            if self.on_busy is not None:
                self.on_busy(time.perf_counter() - started)
            if stop:
                self._final_snapshot(conn)
                return

    def _recover(self) -> bool:
        """Reconnect and reload the state, at most once per backoff step; True when usable."""
        if time.monotonic() < self._recover_at:
            return False
        try:
            self.store.reconnect()
            self._load_state()
        except Exception as exc:
            log.warning("outbox store still unavailable: %s", exc)
            self.failed = exc
            self._recover_wait = min(self._recover_wait * 2, RECOVER_BACKOFF[1])
            self._recover_at = time.monotonic() + self._recover_wait
            return False
        log.info("outbox store reconnected")
        self.failed = None
        self._recover_wait = RECOVER_BACKOFF[0]
        if self.on_reconnect is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self.on_reconnect)
        return True

    def _transaction_failed(self, conn: OutboxStore, batch: list[WriterOp], exc: Exception) -> None:
        """Nothing of the batch was stored: its senders are told so (intake answers 503)."""
        log.error("outbox transaction failed: %s", exc)
        with contextlib.suppress(Exception):
            conn.rollback()
        try:
            self._load_state()  # in-memory state must match what is on disk again
        except Exception as reload_exc:
            log.error("outbox store unavailable, reconnecting: %s", reload_exc)
            self.failed = reload_exc
            self._recover_wait = RECOVER_BACKOFF[0]
            self._recover_at = time.monotonic() + self._recover_wait
        self._complete(batch, None, [], exc)

    def _complete(
        self,
        batch: list[WriterOp],
        results: list[Any] | None,
        created: list[Any],
        error: BaseException | None,
        ingested: list[tuple[asyncio.Future[Any], list[Any]]] | None = None,
    ) -> None:
        loop = self._loop
        assert loop is not None

        def resolve() -> None:
            if created:
                self._sink(created)
            for fut, res in ingested or ():
                if not fut.done():
                    fut.set_result(res)
            for i, op in enumerate(batch):
                if op.kind == "ingest" and error is not None:
                    for _items, waiting in op.args:
                        if not waiting.done():
                            waiting.set_exception(OutboxError(str(error)))
                    continue
                future = op.future
                if future is None or future.done():
                    continue
                if error is not None:
                    future.set_exception(OutboxError(str(error)))
                else:
                    assert results is not None
                    future.set_result(results[i])

        tracked = sum(1 for op in batch if op.kind == "ingest" or op.future is not None)
        if tracked:
            self._done.append((resolve, tracked))  # the loop is polling: it waits for these
        else:
            # A flush the writer started on its own timer: nobody polls, so wake the loop.
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(resolve)
