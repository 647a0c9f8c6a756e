"""Private temporary directories that do not outlive the process that made them.

``fluxwatch simulate`` and ``fluxwatch demo`` keep a CA key, bearer tokens and an HMAC key in a
temporary directory when no ``--state-dir`` is given. Left behind, they are secrets lying in
``/tmp`` for any later process of the same user; so the directory goes on every exit path that
a process can act on: a normal stop, Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal), and
a failed start. (SIGKILL cannot be caught: nothing can clean up after it.)
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

_TERMINATING = (signal.SIGTERM, signal.SIGHUP)
_BLOCKED = {signal.SIGINT, *_TERMINATING}


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Unwinds the stack like Ctrl-C does, so every ``finally`` (this module's included) runs.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def private_temp_dir(prefix: str) -> Iterator[Path]:
    """A new directory only its owner can read (mode 0700), removed when the block exits.

    While the block runs, SIGTERM and SIGHUP end the process through ``SystemExit`` instead of
    killing it outright (an asyncio loop may still install its own handlers for a graceful stop
    inside the block). Removal runs with those signals blocked, so a second signal cannot
    interrupt it halfway.
    """
    # The handlers go in first, and signals wait while the directory is made: one arriving
    # between mkdir and the assignment below would leave a directory nobody knows about.
    previous = {signum: signal.signal(signum, _exit_on_signal) for signum in _TERMINATING}
    path: Path | None = None
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            path = Path(tempfile.mkdtemp(prefix=prefix))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        yield path
    finally:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
