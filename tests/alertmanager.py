"""The real Alertmanager (Debian's binary) on loopback, for tests that send alerts through it.

``running_alertmanager`` writes the configuration, starts it on a free port with clustering off,
waits until ``/-/ready`` answers and stops it afterwards (SIGTERM, then SIGKILL), failing if it
exited on its own during the test. ``shipped_config`` loads the example configuration fluxwatch
ships (alerts/examples/alertmanager.yml) and points its receiver at a test bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.conftest import REPO_ROOT, require_tool

SHIPPED_CONFIG = REPO_ROOT / "alerts" / "examples" / "alertmanager.yml"


@dataclass(frozen=True)
class RunningAlertmanager:
    url: str
    log: Path

    def problems(self) -> list[str]:
        """Lines Alertmanager logged at warn or error level (failed webhooks above all)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if "level=error" in line or "level=warn" in line]

    async def alerts(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        async with http.get(f"{self.url}/api/v2/alerts") as resp:
            assert resp.status == 200, await resp.text()
            found: list[dict[str, Any]] = await resp.json()
            return found


def free_port() -> int:
    """A port the kernel just handed out; Alertmanager takes a flag, not an already-bound socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def shipped_config(bridge_url: str, token_file: Path, **timings: str) -> dict[str, Any]:
    """The shipped example, receiver pointed at ``bridge_url``; ``timings`` override the root
    route's ``group_wait``/``group_interval``/``repeat_interval`` so a test runs in seconds."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    (hook,) = config["receivers"][0]["webhook_configs"]
    hook["url"] = bridge_url
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    config["route"].update(timings)
    return config


async def wait_ready(http: aiohttp.ClientSession, base: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with http.get(f"{base}/-/ready") as resp:
                if resp.status == 200:
                    return
        if time.monotonic() > deadline:
            raise AssertionError(f"Alertmanager at {base} not ready within {within}s")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def alertmanager_process(tmp_path: Path, config: Mapping[str, Any]) -> Any:
    """Start Alertmanager (not waiting for readiness); yields RunningAlertmanager."""
    binary = require_tool("prometheus-alertmanager")
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(dict(config), sort_keys=True), encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield RunningAlertmanager(f"http://127.0.0.1:{port}", log_path)
        assert proc.poll() is None, "Alertmanager exited during the test:\n" + log_path.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.asynccontextmanager
async def running_alertmanager(
    tmp_path: Path, http: aiohttp.ClientSession, config: Mapping[str, Any]
) -> AsyncIterator[RunningAlertmanager]:
    with alertmanager_process(tmp_path, config) as am:
        await wait_ready(http, am.url)
        yield am
