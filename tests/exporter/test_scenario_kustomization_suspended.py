"""Scenario: a Kustomization is suspended then resumed (exact metrics over HTTP)."""

from __future__ import annotations

from pathlib import Path

from tests.exporter.scrape import series, value
from tests.exporter.simfleet import running


async def test_suspend_and_resume(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        ks = {"kind": "Kustomization", "namespace": "payments", "name": "podinfo"}
        before = await run.scrape()
        ready_before = value(before, "flux_cluster_resources", kind="Kustomization", status="ready")
        assert ready_before == 3
        run.c1.suspend("Kustomization", "payments", "podinfo")
        await run.sim.advance(1)
        data = await run.until(
            lambda d: value(d, "flux_resource_status", status="suspended", **ks) == 1, "suspended"
        )
        assert series(data, "flux_resource_info", suspended="true") == [
            series(data, "flux_resource_info", **ks)[0]
        ]
        assert value(data, "flux_cluster_resources", kind="Kustomization", status="suspended") == 1
        assert value(data, "flux_cluster_resources", kind="Kustomization", status="ready") == 2
        assert value(data, "flux_resource_transitions_total", to="suspended") == 1

        run.c1.resume("Kustomization", "payments", "podinfo")
        await run.sim.advance(60)
        data = await run.until(
            lambda d: value(d, "flux_resource_status", status="ready", **ks) == 1, "resumed"
        )
        assert value(data, "flux_resource_info", suspended="false", **ks) == 1
        assert value(data, "flux_resource_transitions_total", **{"from": "suspended"}) == 1
        got = [t.type for t in run.transitions.got if t.name == "podinfo"]
        assert got == ["suspended", "resumed"]
