"""Suite-wide fixtures: real external tools, the shared/ reference folder, and leak checks."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.leaks import leaked_tasks, leaked_threads, settle

REPO_ROOT = Path(__file__).resolve().parent.parent
# shared/ sits beside the clone; a git worktree under <clone-parent>/wt/<name> finds it one up.
SHARED = next(
    (p for p in (REPO_ROOT.parent / "shared", REPO_ROOT.parent.parent / "shared") if p.is_dir()),
    REPO_ROOT.parent / "shared",
)
CRD_DIR = SHARED / "flux-crds"
EXAMPLES_DIR = SHARED / "flux-examples"


def require_tool(name: str) -> str:
    """Path of an external binary; skipped locally when missing, a failure under CI=true."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it with apt)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def crd_dir() -> Path:
    if not CRD_DIR.is_dir():
        pytest.fail(f"the Flux CRDs are expected in {CRD_DIR} (shared/ beside the clone)")
    return CRD_DIR


@pytest.fixture(autouse=True)
def nothing_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test that leaves an asyncio task or a thread running (see tests/leaks.py).

    Autouse, so it is set up before, and torn down after, the test's other fixtures; for an
    async test it asks for the event loop first, so the loop is still open when it checks.
    """
    threads_before = set(threading.enumerate())
    runners = [n for n in request.fixturenames if n.endswith("_scoped_runner")]
    runner = request.getfixturevalue(runners[0]) if runners else None
    loop: asyncio.AbstractEventLoop | None = runner.get_loop() if runner is not None else None
    tasks_before = set(asyncio.all_tasks(loop)) if loop is not None else set()
    yield
    problems: list[str] = []
    ignore_prefix = ""
    if loop is not None and not loop.is_closed():
        settle(loop)
        problems += [f"task {t}" for t in leaked_tasks(loop, tasks_before)]
        if runners[0] == "_function_scoped_runner":
            # The loop ends with this test: its default executor's threads must end too.
            loop.run_until_complete(loop.shutdown_default_executor())
        else:
            ignore_prefix = "asyncio_"  # the executor of a loop shared with later tests
    problems += [f"thread {t}" for t in leaked_threads(threads_before, ignore_prefix=ignore_prefix)]
    if problems:
        pytest.fail("still running after the test ended:\n  " + "\n  ".join(problems))


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port something else already listens on (a listen that must fail)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A valid kubeconfig whose one cluster (context c1) no one answers for."""
    path = tmp_path / "unreachable-kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c1", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u1", "user": {"token": "t"}}],
                "contexts": [{"name": "c1", "context": {"cluster": "c1", "user": "u1"}}],
                "current-context": "c1",
            }
        )
    )
    return path
