"""Fixtures for the watch layer: a simulator over HTTPS and a fast-retrying exporter for it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.settings import BackoffSettings, ExporterSettings, WatchSettings
from simulator.scenario import preset
from simulator.server import SimulatorServer

FAST_WATCH = WatchSettings(
    request_timeout_seconds=5.0,
    inactivity_timeout_seconds=30.0,
    rediscovery_interval_seconds=30.0,
    backoff=BackoffSettings(initial_seconds=0.05, maximum_seconds=0.3, jitter=0.2),
)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatorServer]:
    """The ``small`` preset (c1; c2 without image automation; c3-legacy on an old Flux)."""
    async with SimulatorServer(
        preset("small", seed=3), state_dir=tmp_path / "sim", bookmark_interval=0.5
    ) as server:
        yield server


def settings_for(sim: SimulatorServer, **changes: Any) -> ExporterSettings:
    """Exporter settings for the simulator's kubeconfig, with retries fast enough for tests."""
    base = ExporterSettings(
        listen="127.0.0.1:0",
        kubeconfig=str(sim.kubeconfig_path),
        progress_log_interval_seconds=0.5,
        watch=FAST_WATCH,
    )
    return dataclasses.replace(base, **changes)


async def eventually(check: Callable[[], Any], within: float = 15.0) -> Any:
    """Polls ``check`` (sync or async) until it returns something truthy; fails after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    """GET /metrics and parse it with prometheus-client's parser: (name, labels) -> value."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def series(samples: Samples, name: str, **match: str) -> list[dict[str, str]]:
    """Label sets of every sample of ``name`` whose labels include ``match``."""
    found = []
    for (sample_name, labels), _ in samples.items():
        as_dict = dict(labels)
        if sample_name == name and all(as_dict.get(k) == v for k, v in match.items()):
            found.append(as_dict)
    return found


def object_keys(sim: SimulatorServer, cluster: str, kinds: list[str]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object the simulator serves for these kinds."""
    handle = sim.cluster(cluster)
    keys = set()
    for kind in kinds:
        for obj in handle.objects(kind):
            keys.add((kind, obj["metadata"]["namespace"], obj["metadata"]["name"]))
    return keys


def make_failing(obj: dict[str, Any], reason: str = "BuildFailed") -> dict[str, Any]:
    """The object with Ready=False for ``reason`` (what a failed reconcile leaves behind)."""
    for condition in obj.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            condition.update(status="False", reason=reason, message=f"{reason}: simulated")
        if condition["type"] in ("Reconciling", "Stalled"):
            condition.update(status="False")
    return obj
