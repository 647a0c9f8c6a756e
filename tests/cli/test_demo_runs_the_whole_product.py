"""`fluxwatch demo` runs simulator, exporter and bridge together and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest
from prometheus_client.parser import text_string_to_metric_families

DEADLINE_SECONDS = 60.0


def _read_line_matching(stream: IO[str], pattern: str, seen: list[str]) -> re.Match[str]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def _scrape(url: str) -> dict[str, set[str]]:
    """Metric family name -> the clusters its non-zero samples name."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    clusters: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "cluster" in sample.labels and sample.value != 0:
                clusters.setdefault(family.name, set()).add(sample.labels["cluster"])
    return clusters


def test_demo_serves_metrics_prints_notifications_and_stops_on_sigint(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fluxwatch",
            "demo",
            "--time-scale",
            "60",
            "--exporter-listen",
            "127.0.0.1:0",
            "--bridge-listen",
            "127.0.0.1:0",
            "--no-alerts",  # Prometheus and Alertmanager: test_demo_fires_an_alert_...
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        exporter = _read_line_matching(process.stdout, r"exporter: (http://\S+)/metrics", seen)
        metrics_url = exporter.group(1) + "/metrics"

        deadline = time.monotonic() + DEADLINE_SECONDS
        clusters: dict[str, set[str]] = {}
        while time.monotonic() < deadline:
            clusters = _scrape(metrics_url)
            if clusters.get("flux_cluster_synced") == {"c1", "c2", "c3-legacy"}:
                break
            time.sleep(0.2)
        assert clusters.get("flux_cluster_synced") == {"c1", "c2", "c3-legacy"}
        assert clusters["flux_resource_status"] == {"c1", "c2", "c3-legacy"}

        # A delivered notification: Flux events from the simulator and exporter transitions both
        # reach the console destination through the bridge's durable outbox.
        _read_line_matching(process.stdout, r"console: \S+ \S+ \S+/\S+ on c", seen)

        process.send_signal(signal.SIGINT)
        _read_line_matching(process.stdout, r"^demo stopped", seen)
        assert process.wait(timeout=DEADLINE_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert (tmp_path / "kubeconfig").is_file()
    assert (tmp_path / "outbox").is_dir()


@pytest.mark.parametrize(
    "flag", ["--exporter-listen", "--bridge-listen"], ids=["exporter-listen", "bridge-listen"]
)
def test_demo_rejects_a_bad_listen_address_with_a_clear_message(tmp_path: Path, flag: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fluxwatch", "demo", "--state-dir", str(tmp_path), flag, "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"fluxwatch demo: {flag}: expected HOST:PORT, got 'nowhere'"
