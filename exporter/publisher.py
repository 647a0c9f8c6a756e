"""Hands transitions to a ``TransitionSink`` without ever blocking the watch path.

The store calls ``offer`` synchronously from a watch event; the transition goes into a bounded
queue drained by one task. When the sink is slow and the queue is full, the transition is dropped
and counted: losing a notification is better than stalling every cluster's watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from exporter.selfmetrics import SelfMetrics
from exporter.transitions import Transition, TransitionSink

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 10_000
STOP_GRACE_SECONDS = 10.0  # a hung sink must not hold the process at shutdown


class TransitionPublisher:
    def __init__(
        self,
        sink: TransitionSink | None,
        metrics: SelfMetrics,
        maxsize: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._queue: asyncio.Queue[Transition] = asyncio.Queue(maxsize=maxsize)
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def offer(self, transition: Transition) -> None:
        if self._sink is None:
            return
        try:
            self._queue.put_nowait(transition)
        except asyncio.QueueFull:
            self._metrics.transitions_dropped.labels("queue_full").inc()

    def start(self) -> None:
        """Start draining; call from the running event loop."""
        if self._sink is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def stop(self) -> None:
        """Deliver what is queued, for at most ``STOP_GRACE_SECONDS``, then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), STOP_GRACE_SECONDS)
        except TimeoutError:
            left = self._queue.qsize()
            self._metrics.transitions_dropped.labels("shutdown").inc(left)
            log.warning("stopping with %d transitions undelivered", left)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _drain(self) -> None:
        assert self._sink is not None
        while True:
            transition = await self._queue.get()
            try:
                await self._sink.publish(transition)
                self._metrics.transitions_published.inc()
            except Exception:  # a failing sink must not end the drain task
                self._metrics.transitions_dropped.labels("sink_error").inc()
                log.exception("transition sink failed; transition dropped")
            finally:
                self._queue.task_done()
