"""Scenario: a dependency fails; its dependent waits (DependencyNotReady) and names it as root."""

from __future__ import annotations

from pathlib import Path

from tests.exporter.scrape import value
from tests.exporter.simfleet import running


async def test_dependency_not_ready_points_at_the_failing_dependency(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        run.c1.fail("Kustomization", "flux-system", "infra", "build")
        podinfo = {"kind": "Kustomization", "namespace": "payments", "name": "podinfo"}
        infra = {"kind": "Kustomization", "namespace": "flux-system", "name": "infra"}
        await run.sim.advance(1200)  # past podinfo's interval: it reconciles and waits
        # infra keeps retrying (Ready=Unknown while a retry runs); its last failure stays the
        # root reason, so the dependent's labels do not flap with every retry.
        obj = run.c1.get("Kustomization", "payments", "podinfo")
        assert obj is not None
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "DependencyNotReady"
        data = await run.until(
            lambda d: value(d, "flux_resource_status", root_reason="BuildFailed", **podinfo) == 1,
            "the root cause",
        )
        root = {
            "root_kind": "Kustomization",
            "root_namespace": "flux-system",
            "root_name": "infra",
            "root_reason": "BuildFailed",
        }
        assert value(data, "flux_resource_status", status="failing", **root, **podinfo) == 1
        assert value(data, "flux_resource_status", **root, **infra) == 1  # failing or retrying
        waiting = [t for t in run.transitions.got if t.name == "podinfo" and t.type == "failing"]
        assert waiting
        assert waiting[0].root_cause is not None
        assert (waiting[0].root_cause.name, waiting[0].root_cause.reason) == (
            "infra",
            "BuildFailed",
        )

        run.c1.heal("Kustomization", "flux-system", "infra")
        await run.sim.advance(1200)
        data = await run.until(
            lambda d: value(d, "flux_resource_status", status="ready", **podinfo) == 1, "recovery"
        )
        assert value(data, "flux_cluster_resources", kind="Kustomization", status="failing") == 0
