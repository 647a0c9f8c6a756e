"""`simulate` and `demo` keep a CA key, tokens and an HMAC key in a temp dir that dies with them.

Each case runs the real command as a process with its own TMPDIR, checks that the directory
exists while it runs, ends it one way (a normal stop, SIGINT, SIGTERM, SIGHUP, a failed start,
a signal during start-up) and checks that nothing of it is left.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.cli.process import DEADLINE_SECONDS, Fluxwatch


def _left_behind(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("fluxwatch-"))


async def _started(tmpdir: Path, *args: str, ready: str) -> tuple[Fluxwatch, Path]:
    process = await Fluxwatch.start(*args, env={"TMPDIR": str(tmpdir)})
    match = await process.wait_for_line(ready)
    (state,) = [tmpdir / name for name in _left_behind(tmpdir)]
    assert (state / "ca.crt").is_file()  # the secrets are there while it runs
    assert match is not None
    return process, state


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGINT, 0), (signal.SIGTERM, 0), (signal.SIGHUP, 128 + signal.SIGHUP)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
async def test_simulate_removes_its_temp_dir_when_signalled(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    process, state = await _started(
        tmp_path, "simulate", "--listen", "127.0.0.1:0", ready=r"^listening: https://"
    )
    try:
        assert state.name.startswith("fluxwatch-sim-")
        assert (state / "serving.key").stat().st_mode & 0o077 == 0
        process.proc.send_signal(signum)
        assert await process.finish() == exit_code, process.stderr
    finally:
        await process.kill()
    assert _left_behind(tmp_path) == []


async def test_simulate_signalled_while_starting_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM as soon as the directory exists: while the 50-cluster fleet is still being built."""
    process = await Fluxwatch.start(
        "simulate", "--preset", "fleet", "--listen", "127.0.0.1:0", env={"TMPDIR": str(tmp_path)}
    )
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            while not _left_behind(tmp_path):
                assert process.proc.returncode is None, process.stderr
                await asyncio.sleep(0.005)
        process.proc.send_signal(signal.SIGTERM)
        assert await process.finish() in (0, 128 + signal.SIGTERM), process.stderr
    finally:
        await process.kill()
    assert _left_behind(tmp_path) == []


async def test_simulate_failing_to_listen_leaves_nothing(
    tmp_path: Path, occupied_port: int
) -> None:
    process = await Fluxwatch.start(
        "simulate",
        "--listen",
        f"127.0.0.1:{occupied_port}",
        "--log-level",
        "warning",
        env={"TMPDIR": str(tmp_path)},
    )
    try:
        assert await process.finish() == 2
    finally:
        await process.kill()
    assert process.stderr == [
        f"fluxwatch simulate: simulator: cannot listen on 127.0.0.1:{occupied_port}: address "
        "already in use (is another fluxwatch or another program running there?)"
    ]
    assert _left_behind(tmp_path) == []


DEMO = ("demo", "--exporter-listen", "127.0.0.1:0", "--bridge-listen", "127.0.0.1:0")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_demo_removes_its_temp_dir_when_signalled(tmp_path: Path, signum: int) -> None:
    process, state = await _started(tmp_path, *DEMO, ready=r"notifications follow")
    try:
        assert state.name.startswith("fluxwatch-demo-")
        assert (state / "flux-hmac.key").is_file()
        process.proc.send_signal(signum)
        assert await process.finish() == 0, process.stderr
    finally:
        await process.kill()
    assert _left_behind(tmp_path) == []


async def test_demo_stopping_by_itself_removes_its_temp_dir(tmp_path: Path) -> None:
    process = await Fluxwatch.start(*DEMO, "--duration", "0", env={"TMPDIR": str(tmp_path)})
    try:
        assert await process.finish() == 0, process.stderr
    finally:
        await process.kill()
    kubeconfig = next(line for line in process.stdout if line.startswith("kubeconfig: "))
    assert "/fluxwatch-demo-" in kubeconfig  # it did run from a temp dir
    assert process.stdout[-1] == "demo stopped"
    assert _left_behind(tmp_path) == []


async def test_demo_failing_to_listen_leaves_nothing(tmp_path: Path, occupied_port: int) -> None:
    process = await Fluxwatch.start(
        "demo",
        "--exporter-listen",
        "127.0.0.1:0",
        "--bridge-listen",
        f"127.0.0.1:{occupied_port}",
        "--log-level",
        "warning",
        env={"TMPDIR": str(tmp_path)},
    )
    try:
        assert await process.finish() == 2
    finally:
        await process.kill()
    assert len(process.stderr) == 1, process.stderr
    assert process.stderr[0].startswith(
        f"fluxwatch demo: bridge: cannot listen on 127.0.0.1:{occupied_port}: address already"
    )
    assert _left_behind(tmp_path) == []
