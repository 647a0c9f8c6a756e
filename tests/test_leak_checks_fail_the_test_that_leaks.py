"""The suite-wide leak check fails exactly the tests that leave a task or a thread running.

Runs a small suite in a separate pytest process with tests/conftest.py loaded as a plugin: one
test forgets a task, one a thread, one of our daemon writers, and two clean up properly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

INNER = """
import asyncio
import threading

import pytest


async def test_forgets_a_task():
    asyncio.create_task(asyncio.sleep(3600), name="forgotten-task")


def test_forgets_a_thread():
    done = threading.Event()
    threading.Thread(target=done.wait, args=(3,), name="forgotten-thread").start()


def test_forgets_a_daemon_of_ours():
    done = threading.Event()
    threading.Thread(target=done.wait, args=(3,), name="fluxwatch-writer", daemon=True).start()


async def test_cancels_and_awaits_its_task():
    task = asyncio.create_task(asyncio.sleep(3600))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_uses_the_default_executor():
    await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2])
"""


def test_leaking_tests_fail_and_clean_ones_pass(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "FLUXWATCH_TEST_THREAD_GRACE_SECONDS": "0.2",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "5 passed, 3 errors" in out, out  # errors at teardown, one per leaking test
    assert "ERROR test_inner.py::test_forgets_a_task" in out
    assert "task forgotten-task" in out
    assert "ERROR test_inner.py::test_forgets_a_thread" in out
    assert "thread forgotten-thread (non-daemon)" in out
    assert "ERROR test_inner.py::test_forgets_a_daemon_of_ours" in out
    assert "thread fluxwatch-writer (daemon)" in out
