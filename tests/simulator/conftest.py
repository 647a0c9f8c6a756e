"""Fixtures: a running simulator (manual clock) and real kubernetes_asyncio clients for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from simulator.scenario import preset
from simulator.server import SimulatorServer

KS = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HR = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
GIT = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatorServer]:
    """The ``small`` preset on a manual clock, with fast bookmarks for the watch tests."""
    async with SimulatorServer(
        preset("small", seed=1), state_dir=tmp_path, bookmark_interval=0.2
    ) as server:
        yield server


@asynccontextmanager
async def kube(sim: SimulatorServer, context: str) -> AsyncIterator[client.ApiClient]:
    """A real client built from the simulator's kubeconfig, exactly as a user would."""
    api = await config.new_client_from_config(config_file=str(sim.kubeconfig_path), context=context)
    async with api:
        yield api


async def eventually(check: Callable[[], Awaitable[Any] | Any], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns a truthy value or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)
