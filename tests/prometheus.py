"""The real Prometheus (Debian's binary) on loopback, for tests that query what it scraped.

``running_prometheus`` starts one with a 1 s scrape interval on a free port, waits until every
target is up and stops it afterwards (failing if it did not exit cleanly); ``Prometheus`` wraps
its HTTP API with calls that must succeed and polls with a deadline (never a fixed sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.conftest import require_tool

DEADLINE = 20.0
T = TypeVar("T")


def free_port() -> int:
    """A port the kernel just handed out; Prometheus has no port-0 option, so bind and release."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Job:
    """One scrape job: ``targets`` (host:port) with extra target ``labels``."""

    name: str
    targets: Sequence[str]
    labels: Mapping[str, str] | None = None


def prometheus_config(
    jobs: Sequence[Job] | str,
    rule_files: Sequence[Path] = (),
    alertmanagers: Sequence[str] = (),
) -> str:
    """A config scraping ``jobs`` every second (a bare target string means job ``fluxwatch``),
    evaluating ``rule_files`` and sending alerts to ``alertmanagers`` (host:port)."""
    if isinstance(jobs, str):
        jobs = [Job("fluxwatch", [jobs])]
    lines = [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
    ]
    if rule_files:
        lines.append("rule_files:")
        lines += [f"  - '{path}'" for path in rule_files]
    if alertmanagers:
        targets = ", ".join(f"'{t}'" for t in alertmanagers)
        lines += ["alerting:", "  alertmanagers:", "    - static_configs:"]
        lines.append(f"        - targets: [{targets}]")
    lines.append("scrape_configs:")
    for job in jobs:
        targets = ", ".join(f"'{t}'" for t in job.targets)
        lines += [
            f"  - job_name: {job.name}",
            "    metrics_path: /metrics",
            "    static_configs:",
            f"      - targets: [{targets}]",
        ]
        if job.labels:
            lines.append("        labels:")
            lines += [f"          {k}: '{v}'" for k, v in sorted(job.labels.items())]
    return "\n".join(lines) + "\n"


async def poll(get: Callable[[], Awaitable[T | None]], what: str, log: Path) -> T:
    """Call ``get`` until it returns something; fail with ``what`` and Prometheus's log tail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        with contextlib.suppress(aiohttp.ClientConnectionError):
            got = await get()
            if got is not None:
                return got
        if loop.time() > deadline:
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
            raise AssertionError(f"timed out waiting for {what}; prometheus log:\n{tail}")
        await asyncio.sleep(0.1)


async def api_get(http: aiohttp.ClientSession, url: str, params: Mapping[str, str]) -> Any:
    """One Prometheus API call that must succeed: HTTP 200 and ``status: success``."""
    async with http.get(url, params=dict(params)) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["status"] == "success", body
    return body


@dataclass
class Prometheus:
    url: str
    http: aiohttp.ClientSession
    log: Path

    async def get(self, path: str, **params: str) -> Any:
        return await api_get(self.http, f"{self.url}{path}", params)

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now (possibly empty)."""
        body = await self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def until(
        self, expr: str, check: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        """Query ``expr`` until ``check`` holds for its result."""

        async def once() -> list[dict[str, Any]] | None:
            result = await self.query(expr)
            return result if check(result) else None

        return await poll(once, what, self.log)

    async def targets_up(self, count: int) -> list[dict[str, Any]]:
        seen: list[object] = []

        async def up() -> list[dict[str, Any]] | None:
            async with self.http.get(f"{self.url}/api/v1/targets") as resp:
                if resp.status != 200:
                    return None
                body = await resp.json()
            active: list[dict[str, Any]] = body["data"]["activeTargets"]
            seen[:] = [active]
            if len(active) == count and all(t["health"] == "up" for t in active):
                return active
            return None

        try:
            return await poll(up, f"{count} targets to be up", self.log)
        except AssertionError as err:
            raise AssertionError(f"{err}\nlast targets seen: {seen}") from None


@contextlib.asynccontextmanager
async def running_prometheus(
    tmp_path: Path,
    http: aiohttp.ClientSession,
    jobs: Sequence[Job],
    rule_files: Sequence[Path] = (),
    alertmanagers: Sequence[str] = (),
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``jobs``, every target up; stopped (cleanly) on exit. With
    ``rule_files`` it evaluates them every second and sends alerts to ``alertmanagers``."""
    binary = require_tool("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(jobs, rule_files, alertmanagers))
    log = tmp_path / "prometheus.log"
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            prom = Prometheus(f"http://127.0.0.1:{port}", http, log)
            await prom.targets_up(sum(len(j.targets) for j in jobs))
            yield prom
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
