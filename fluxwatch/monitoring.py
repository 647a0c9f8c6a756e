"""The demo's monitoring half: a real Prometheus loaded with the generated rules and a real
Alertmanager (the shipped example configuration) posting to the bridge, as child processes.

Both are Debian's binaries (``make tools`` installs them); without them the demo runs without
alerts. Their data goes under the demo's state directory, and they run in their own session so
the terminal's Ctrl-C reaches only fluxwatch, which then stops them in order: every child is
terminated (then killed after a grace period) on every exit path, a failed start included.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from alerts.alertmanager import example_config
from alerts.render import dump_yaml, render
from alerts.settings import AlertSettings, with_overrides

PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
READY_WITHIN = 60.0
STOP_GRACE = 10.0

DEMO_RULES = (
    # The shipped rules with minutes shortened to seconds, so the scripted failure pages quickly.
    "evaluation_interval=5s",
    "failing_for=1m",
    "failing_for.HelmRelease=20s",
    "failing_for.Kustomization=30s",
    "source_failing_for=1m",
    "stalled_for=20s",
    "retries_exhausted_for=10s",
    "fleet_failing_for=10s",
    "cluster_unreachable_for=30s",
)


@dataclass(frozen=True)
class Monitoring:
    prometheus_url: str
    alertmanager_url: str
    rules_file: Path


def find_binaries() -> tuple[str, str] | None:
    """(prometheus, alertmanager) paths, or None when either is missing."""
    prom = next((p for p in map(shutil.which, PROMETHEUS_BINARIES) if p), None)
    am = next((p for p in map(shutil.which, ALERTMANAGER_BINARIES) if p), None)
    return (prom, am) if prom and am else None


def resolve_listen(listen: tuple[str, int]) -> tuple[str, int]:
    """Port 0 becomes a free port: neither binary can bind port 0 and report it."""
    host, port = listen
    if port:
        return host, port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return host, int(sock.getsockname()[1])


def demo_settings() -> AlertSettings:
    return with_overrides(AlertSettings(), DEMO_RULES)


def prometheus_config(
    rules: Path, alertmanager: str, exporter: str, bridge: str, settings: AlertSettings
) -> str:
    interval = f"{settings.evaluation_interval}s"
    document = {
        "global": {"scrape_interval": "5s", "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "fluxwatch", "static_configs": [{"targets": [exporter]}]},
            {"job_name": "fluxwatch-bridge", "static_configs": [{"targets": [bridge]}]},
        ],
    }
    return dump_yaml(document)


class _Child:
    """One child process, logging to a file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, argv: Sequence[str]) -> None:
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def failure(self) -> str:
        tail = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return f"{self.name} did not start: {tail[-1] if tail else 'no output'} (log: {self.log})"

    async def wait_ready(self, http: aiohttp.ClientSession, url: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WITHIN
        while True:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise OSError(self.failure())
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/-/ready") as resp:
                    if resp.status == 200:
                        return
            if loop.time() > deadline:
                raise OSError(f"{self.name} not ready within {READY_WITHIN:g}s (log: {self.log})")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_GRACE)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def monitoring(
    binaries: tuple[str, str],
    state_dir: Path,
    *,
    exporter: str,
    bridge: str,
    token_file: Path,
    prometheus_listen: tuple[str, int],
    alertmanager_listen: tuple[str, int],
) -> AsyncIterator[Monitoring]:
    """Alertmanager, then Prometheus, both ready; stopped in reverse order on exit.

    ``exporter`` and ``bridge`` are host:port targets; the bridge's ``/alertmanager`` intake
    takes the bearer token in ``token_file``.
    """
    prometheus_bin, alertmanager_bin = binaries
    settings = demo_settings()
    base = state_dir / "monitoring"
    base.mkdir(parents=True, exist_ok=True)
    rules = base / "fluxwatch-rules.yml"
    rules.write_text(render(settings), encoding="utf-8")
    am_host, am_port = resolve_listen(alertmanager_listen)
    prom_host, prom_port = resolve_listen(prometheus_listen)
    am_config = example_config(
        settings,
        f"http://{bridge}/alertmanager",
        str(token_file),
        group_wait="5s",
        group_interval="30s",
        repeat_interval="1h",
    )
    (base / "alertmanager.yml").write_text(dump_yaml(am_config), encoding="utf-8")
    (base / "prometheus.yml").write_text(
        prometheus_config(rules, f"{am_host}:{am_port}", exporter, bridge, settings),
        encoding="utf-8",
    )
    alertmanager = _Child("alertmanager", base / "alertmanager.log")
    prometheus = _Child("prometheus", base / "prometheus.log")
    try:
        async with aiohttp.ClientSession() as http:
            await alertmanager.start(
                [
                    alertmanager_bin,
                    f"--config.file={base / 'alertmanager.yml'}",
                    f"--storage.path={base / 'alertmanager-data'}",
                    f"--web.listen-address={am_host}:{am_port}",
                    "--cluster.listen-address=",
                ]
            )
            await prometheus.start(
                [
                    prometheus_bin,
                    f"--config.file={base / 'prometheus.yml'}",
                    f"--storage.tsdb.path={base / 'prometheus-data'}",
                    f"--web.listen-address={prom_host}:{prom_port}",
                ]
            )
            am_url = f"http://{am_host}:{am_port}"
            prom_url = f"http://{prom_host}:{prom_port}"
            await alertmanager.wait_ready(http, am_url)
            await prometheus.wait_ready(http, prom_url)
        yield Monitoring(prom_url, am_url, rules)
    finally:
        await prometheus.stop()
        await alertmanager.stop()
