"""What a test leaves running: asyncio tasks and threads that outlive it.

A task or a thread still alive after its test (and all of its fixtures) ended is work that a
``stop()`` forgot: in the product it is a process that does not exit, a socket or a database
handle kept open, a writer that goes on writing after its owner is gone. The suite-wide fixture
in tests/conftest.py fails the test that leaked, naming what it left.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterable

# Threads may take a moment to see their stop signal; tasks get a few loop iterations.
THREAD_GRACE_SECONDS = float(os.environ.get("FLUXWATCH_TEST_THREAD_GRACE_SECONDS", "5"))
LOOP_ITERATIONS = 5


def _ours_or_blocking(thread: threading.Thread) -> bool:
    # Non-daemon threads keep a process from exiting; ours (named fluxwatch-*) are checked even
    # when they are daemons, since a daemon writer left behind is a leak all the same.
    return not thread.daemon or thread.name.startswith("fluxwatch")


def leaked_threads(before: Iterable[threading.Thread], *, ignore_prefix: str = "") -> list[str]:
    """Threads started since ``before`` that are still alive after a short grace period."""
    known = set(before)
    deadline = time.monotonic() + THREAD_GRACE_SECONDS
    while True:
        alive = [
            t
            for t in threading.enumerate()
            if t not in known
            and t.is_alive()
            and _ours_or_blocking(t)
            and not (ignore_prefix and t.name.startswith(ignore_prefix))
        ]
        if not alive or time.monotonic() > deadline:
            return sorted(f"{t.name} ({'daemon' if t.daemon else 'non-daemon'})" for t in alive)
        alive[0].join(timeout=0.05)


def settle(loop: asyncio.AbstractEventLoop) -> None:
    """Let tasks that were cancelled (but not awaited) at teardown finish their cancellation."""
    for _ in range(LOOP_ITERATIONS):
        loop.run_until_complete(asyncio.sleep(0))


def leaked_tasks(
    loop: asyncio.AbstractEventLoop, before: Iterable[asyncio.Task[object]]
) -> list[str]:
    known = set(before)
    return sorted(
        f"{task.get_name()}: {task.get_coro()!r}"
        for task in asyncio.all_tasks(loop)
        if task not in known and not task.done()
    )
