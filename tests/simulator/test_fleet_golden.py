"""The objects a seed produces, byte for byte: a fresh cluster and one after a scripted hour.

Regenerate with ``FLUXWATCH_UPDATE_GOLDEN=1 pytest tests/simulator/test_fleet_golden.py`` and
review the diff: any change here is a change every client of the simulator will see.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from simulator.kinds import KINDS
from simulator.scenario import preset
from simulator.server import SimulatorServer

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLUXWATCH_UPDATE_GOLDEN") == "1"
START = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def dump(sim: SimulatorServer, cluster: str) -> str:
    handle = sim.cluster(cluster)
    objects: list[dict[str, Any]] = [o for info in KINDS for o in handle.objects(info.kind)]
    return json.dumps(objects, indent=2, sort_keys=True) + "\n"


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs; regenerate with FLUXWATCH_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("cluster", ["c1", "c3-legacy"])
async def test_fresh_cluster(tmp_path: Path, cluster: str) -> None:
    async with SimulatorServer(
        preset("small", seed=1), state_dir=tmp_path, start_time=START
    ) as sim:
        check(f"small-seed1-{cluster}-fresh.json", dump(sim, cluster))


async def test_cluster_after_a_scripted_hour(tmp_path: Path) -> None:
    async with SimulatorServer(
        preset("small", seed=1), state_dir=tmp_path, start_time=START
    ) as sim:
        c1 = sim.cluster("c1")
        c1.fail("HelmRelease", "search", "frontend", "upgrade")
        c1.fail("GitRepository", "payments", "podinfo", "fetch")
        sim.new_commit("GitRepository", "flux-system", "flux-system", clusters=["c1"])
        c1.suspend("Kustomization", "checkout", "cart-oci")
        await sim.advance(3600)
        check("small-seed1-c1-after-1h.json", dump(sim, "c1"))
