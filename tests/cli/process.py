"""Running ``python -m fluxwatch`` as a real process: its output lines, signals, its exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 60.0


class Fluxwatch:
    """One ``fluxwatch`` process; stdout and stderr are collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._new_line = asyncio.Event()
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._collect(proc.stdout, self.stdout)),
            asyncio.create_task(self._collect(proc.stderr, self.stderr)),
        ]

    @classmethod
    async def start(cls, *args: str, env: Mapping[str, str] | None = None) -> Fluxwatch:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fluxwatch",
            *args,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        return cls(proc)

    async def _collect(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))
            self._new_line.set()

    async def wait_for_line(self, pattern: str) -> re.Match[str]:
        """The first stdout line matching ``pattern``; fails if the process ends first."""
        async with asyncio.timeout(DEADLINE_SECONDS):
            while True:
                for line in self.stdout:
                    if match := re.search(pattern, line):
                        return match
                if self.proc.returncode is not None and all(r.done() for r in self._readers):
                    raise AssertionError(
                        f"exited {self.proc.returncode} before printing {pattern!r}:\n"
                        + "\n".join(self.stdout + self.stderr)
                    )
                self._new_line.clear()
                waiter = asyncio.ensure_future(self._new_line.wait())
                exited = asyncio.ensure_future(self.proc.wait())
                await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                exited.cancel()
                await asyncio.gather(waiter, exited, return_exceptions=True)

    async def finish(self) -> int:
        """Waits for the exit (within the deadline) and for all output."""
        async with asyncio.timeout(DEADLINE_SECONDS):
            code = await self.proc.wait()
            await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        """Makes sure nothing is left running (for ``finally`` blocks)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)
