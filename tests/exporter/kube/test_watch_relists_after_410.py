"""A forced 410 Gone relists and swaps the kind in: no missing and no stale series after."""

from __future__ import annotations

import copy
import secrets

from catalogue import exporter as catalogue
from exporter.app import Exporter
from exporter.kinds import KINDS
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import (
    Samples,
    eventually,
    object_keys,
    scrape,
    series,
    settings_for,
    value,
)

C1_KINDS = [k.kind for k in KINDS if k.kind != "ExternalArtifact"]


def _exposed(samples: Samples) -> set[tuple[str, str, str]]:
    return {
        (s["kind"], s["namespace"], s["name"])
        for s in series(samples, "flux_resource_status", cluster="c1")
    }


async def test_history_lost_during_a_drop_relists_without_missing_or_stale_series(
    sim: SimulatorServer,
) -> None:
    c1 = sim.cluster("c1")
    async with Exporter(settings_for(sim, contexts=("c1",))) as exporter:
        await eventually(exporter.ready)
        before = _exposed(await scrape(exporter.url))
        assert before == object_keys(sim, "c1", C1_KINDS)

        c1.set_outage("refuse")  # drop every stream
        gone = c1.objects("Kustomization")[-1]
        c1.delete("Kustomization", gone["metadata"]["namespace"], gone["metadata"]["name"])
        added = copy.deepcopy(c1.objects("GitRepository")[0])
        added["metadata"]["name"] = "added-while-away"
        added["metadata"]["uid"] = secrets.token_hex(16)
        c1.apply(added)
        c1.compact_history()  # the versions the exporter would resume from are gone: 410
        c1.set_outage(None)

        expected = object_keys(sim, "c1", C1_KINDS)
        samples = await _wait_for_exposed(exporter, expected)
    gone_key = ("Kustomization", gone["metadata"]["namespace"], gone["metadata"]["name"])
    assert gone_key not in _exposed(samples)
    assert ("GitRepository", added["metadata"]["namespace"], "added-while-away") in _exposed(
        samples
    )
    assert (value(samples, catalogue.RELISTS.name, cluster="c1") or 0) >= 1
    assert (value(samples, catalogue.WATCH_RESTARTS.name, cluster="c1", reason="gone") or 0) >= 1
    # Aggregates agree with the per-object series (the kind was swapped in whole).
    counted = sum(
        v
        for (name, labels), v in samples.items()
        if name == "flux_cluster_resources" and ("cluster", "c1") in labels
    )
    assert counted == len(expected)


async def _wait_for_exposed(exporter: Exporter, expected: set[tuple[str, str, str]]) -> Samples:
    latest: list[Samples] = []

    async def check() -> bool:
        latest.append(await scrape(exporter.url))
        return _exposed(latest[-1]) == expected

    await eventually(check)
    return latest[-1]
