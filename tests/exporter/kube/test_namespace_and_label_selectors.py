"""--namespace and --label-selector (Flux's shard label included) limit what is watched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from exporter.app import Exporter
from exporter.kinds import KINDS
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, settings_for

SHARD = "sharding.fluxcd.io/key"
Keep = Callable[[dict[str, Any]], bool]


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


CASES: list[tuple[str, dict[str, str], Keep]] = [
    (
        "namespace",
        {"namespace": "flux-system"},
        lambda o: o["metadata"]["namespace"] == "flux-system",
    ),
    ("shard1", {"label_selector": f"{SHARD}=shard1"}, lambda o: _labels(o).get(SHARD) == "shard1"),
    ("unsharded", {"label_selector": f"!{SHARD}"}, lambda o: SHARD not in _labels(o)),
]


@pytest.mark.parametrize(("changes", "keep"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_only_selected_objects_are_watched(
    sim: SimulatorServer, changes: dict[str, str], keep: Keep
) -> None:
    c1 = sim.cluster("c1")
    every = [o for k in KINDS if k.kind != "ExternalArtifact" for o in c1.objects(k.kind)]
    expected = {
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in every if keep(o)
    }
    assert 0 < len(expected) < len(every)  # objects on both sides of the selector
    async with Exporter(settings_for(sim, contexts=("c1",), **changes)) as exporter:
        await eventually(exporter.ready)
        held = {
            (kind, state.derived.namespace, state.derived.name)
            for kind, kd in exporter.store.clusters["c1"].kinds.items()
            for state in kd.states.values()
        }
    assert held == expected
