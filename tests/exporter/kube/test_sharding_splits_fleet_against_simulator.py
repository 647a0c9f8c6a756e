"""N replicas against one fleet: clusters (or one cluster's objects) split exactly, no overlap."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from exporter.app import Exporter
from exporter.kinds import KINDS
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, object_keys, settings_for

SERVED_KINDS = [k.kind for k in KINDS if k.kind != "ExternalArtifact"]

TINY = AppMix(git=1, helm=0, oci=0, oci_helm=0, bucket=0, image=0, canary=0, notification=0)
BIGGER = AppMix(git=4, helm=3, oci=2, oci_helm=0, bucket=1, image=1, canary=0, notification=1)
FLEET = Scenario(
    name="shards",
    seed=5,
    clusters=(
        ClusterSpec("edge-00", apps=BIGGER),
        *(ClusterSpec(f"edge-{i:02d}", apps=TINY) for i in range(1, 9)),
    ),
)


@pytest.fixture
async def fleet_sim(tmp_path: Path) -> SimulatorServer:  # type: ignore[misc]
    async with SimulatorServer(FLEET, state_dir=tmp_path / "sim") as server:
        yield server


def _keys(exporter: Exporter) -> set[tuple[str, str, str, str]]:
    return {
        (cluster, kind, state.derived.namespace, state.derived.name)
        for cluster, data in exporter.store.clusters.items()
        for kind, kd in data.kinds.items()
        for state in kd.states.values()
    }


@pytest.mark.parametrize("total", [1, 2, 3], ids=lambda n: f"{n}-replicas")
async def test_clusters_split_exactly(fleet_sim: SimulatorServer, total: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                Exporter(settings_for(fleet_sim, shard=i, total_shards=total))
            )
            for i in range(total)
        ]
        for replica in replicas:
            await eventually(replica.ready)
        owned = [set(r.store.clusters) for r in replicas]
    assert set().union(*owned) == set(fleet_sim.cluster_names)
    assert sum(len(o) for o in owned) == len(fleet_sim.cluster_names)  # no overlap
    if total > 1:
        assert all(owned), "a replica with nothing to do: the hash does not spread"


@pytest.mark.parametrize("total", [2, 3], ids=lambda n: f"{n}-replicas")
async def test_single_cluster_objects_split_by_uid(fleet_sim: SimulatorServer, total: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                Exporter(
                    settings_for(fleet_sim, contexts=("edge-00",), shard=i, total_shards=total)
                )
            )
            for i in range(total)
        ]
        for replica in replicas:
            await eventually(replica.ready)
        owned = [_keys(r) for r in replicas]
    everything = {
        ("edge-00", kind, namespace, name)
        for kind, namespace, name in object_keys(fleet_sim, "edge-00", SERVED_KINDS)
    }
    assert len(everything) > 30
    union = set().union(*owned)
    assert union == everything
    assert sum(len(o) for o in owned) == len(union)  # no object on two replicas
    assert all(owned)
