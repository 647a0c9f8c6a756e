"""`fluxwatch demo` with Prometheus and Alertmanager: the scripted failure pages on the console
through Alertmanager and the bridge within two minutes, and Ctrl-C leaves no child running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import require_tool

DEADLINE_SECONDS = 120.0  # the demo promises an alert notification within two minutes


def _read_until(stream: IO[str], pattern: str, seen: list[str], within: float) -> re.Match[str]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} within {within:g}s in:\n{''.join(seen)}")


def _descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid`` (pid -> command line), read from /proc."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])
        commands[int(entry.name)] = cmdline
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = commands[child]
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.timeout(240)
def test_demo_alert_reaches_the_console_and_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fluxwatch",
            "demo",
            *("--exporter-listen", "127.0.0.1:0", "--bridge-listen", "127.0.0.1:0"),
            *("--prometheus-listen", "127.0.0.1:0", "--alertmanager-listen", "127.0.0.1:0"),
            *("--state-dir", str(tmp_path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen: list[str] = []
    started = time.monotonic()
    try:
        assert process.stdout is not None
        prom = _read_until(process.stdout, r"Prometheus alerts\s+(http://\S+)/alerts", seen, 60)
        _read_until(process.stdout, r"Alertmanager\s+http://\S+/#/alerts", seen, 5)
        _read_until(process.stdout, r"bridge status\s+http://\S+/readyz", seen, 5)
        assert prom.group(1).startswith("http://127.0.0.1:")
        children = _descendants(process.pid)
        commands = " ".join(children.values())
        assert "prometheus --config.file" in commands, children
        assert "alertmanager --config.file" in commands, children

        left = DEADLINE_SECONDS - (time.monotonic() - started)
        _read_until(
            process.stdout,
            r"FIRING HelmRelease search/frontend on c1 \(\w+\) \[Alertmanager\]",
            seen,
            left,
        )
        children = _descendants(process.pid)

        process.send_signal(signal.SIGINT)
        _read_until(process.stdout, r"^demo stopped", seen, 60)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert children
    assert [f"{pid} {cmd}" for pid, cmd in children.items() if _alive(pid)] == []
    # their data lived in the demo's state directory, and the dashboards were written beside it
    assert (tmp_path / "monitoring" / "prometheus-data").is_dir()
    assert (tmp_path / "monitoring" / "alertmanager-data").is_dir()
    assert sorted((tmp_path / "dashboards").glob("*.json"))
