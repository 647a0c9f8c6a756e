"""The de-duplication snapshot is written on schedule while intake never pauses.

Without it, event pruning stalls (it keeps what the snapshot does not cover) and a crash
replays every event since the last quiet moment. Here the writer never finds its queue empty:
it is held while a thousand intake operations queue up, then works through them one per
transaction, and the snapshot must be on disk before the queue drains. The clock is injected
and moves with every reading, so "a second" passes without waiting for one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

from notifiers.outbox import IngestItem, Outbox
from tests.notifiers.fakes import parsed_flux_event

OPERATIONS = 1000


class MovingClock:
    """Every reading is ``step`` seconds after the previous one: time passes with work done."""

    def __init__(self, step: float) -> None:
        self.now = 1_800_000_000.0
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now


def snapshot_mark(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'dedup_seq'").fetchone()
        return 0 if row is None else int(row[0])
    finally:
        conn.close()


async def test_snapshot_is_written_while_intake_never_pauses(tmp_path: Path) -> None:
    clock = MovingClock(step=0.01)  # the snapshot is due after about 100 readings
    outbox = Outbox(tmp_path, max_batch=1, clock=clock)
    outbox.start(lambda _created: None)
    gate = threading.Event()
    try:
        held = asyncio.ensure_future(outbox.call(lambda _conn: gate.wait(10)))
        futures: list[asyncio.Future[Any]] = []
        for i in range(OPERATIONS):
            event = parsed_flux_event(f"app-{i}", now=clock())
            futures.append(asyncio.ensure_future(outbox.ingest([IngestItem(event, ())])))
            await asyncio.sleep(0)  # its own loop iteration: its own operation for the writer
        gate.set()
        await held
        await futures[OPERATIONS // 2]
        mark = snapshot_mark(outbox.path)
        assert not futures[-1].done(), "the writer caught up: the intake was not continuous"
        assert mark > 0, "no de-duplication snapshot while intake continued"
        await asyncio.gather(*futures)
    finally:
        gate.set()
        await outbox.stop()
