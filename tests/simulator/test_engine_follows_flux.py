"""The scenario engine changes statuses the way Flux's controllers do: faults, retries, Stalled,
dependencies, suspend/resume, commits rolling out, and the test-control API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.kinds import KINDS
from simulator.scenario import preset
from simulator.server import ClusterHandle, SimulatorServer
from tests.simulator.conftest import eventually


def cond(obj: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    assert obj is not None
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == ctype), None)


def ready(obj: dict[str, Any] | None) -> tuple[str, str]:
    c = cond(obj, "Ready")
    assert c is not None
    return c["status"], c["reason"]


async def advance_until(
    sim: SimulatorServer, check: Callable[[], bool], limit: float = 900, step: float = 5
) -> float:
    """Advance the manual clock in small steps until ``check`` holds; returns the time spent.

    Failing objects keep retrying (and pass through ``Ready=Unknown`` on every attempt, as
    Flux's do), so a state is awaited rather than expected at one fixed instant."""
    spent = 0.0
    while not check():
        if spent >= limit:
            raise AssertionError(f"not reached within {limit} simulated seconds")
        await sim.advance(step)
        spent += step
    return spent


FAULT_CASES = [
    ("GitRepository", "payments", "podinfo", "fetch", "GitOperationFailed", "FetchFailed"),
    (
        "OCIRepository",
        "checkout",
        "cart-manifests",
        "fetch",
        "OCIArtifactPullFailed",
        "FetchFailed",
    ),
    ("Bucket", "identity", "catalog-config", "fetch", "BucketOperationFailed", "FetchFailed"),
    ("HelmChart", "search", "search-frontend", "fetch", "ChartPullFailed", "FetchFailed"),
    ("Kustomization", "flux-system", "infra", "build", "BuildFailed", None),
    ("Kustomization", "flux-system", "infra", "health", "HealthCheckFailed", "Healthy"),
    ("HelmRelease", "search", "frontend", "upgrade", "UpgradeFailed", "Released"),
    ("HelmRelease", "search", "frontend", "install", "InstallFailed", "Released"),
    ("HelmRelease", "search", "frontend", "test", "TestFailed", "TestSuccess"),
]


@pytest.mark.parametrize(
    ("kind", "namespace", "name", "fault", "reason", "extra"),
    FAULT_CASES,
    ids=[f"{c[0]}-{c[3]}" for c in FAULT_CASES],
)
async def test_fault_then_heal(
    sim: SimulatorServer,
    kind: str,
    namespace: str,
    name: str,
    fault: Any,
    reason: str,
    extra: str | None,
) -> None:
    c1 = sim.cluster("c1")
    assert ready(c1.get(kind, namespace, name))[0] == "True"
    c1.fail(kind, namespace, name, fault)
    await advance_until(sim, lambda: ready(c1.get(kind, namespace, name)) == ("False", reason))
    if extra is not None:
        side = cond(c1.get(kind, namespace, name), extra)
        assert side is not None
        assert side["status"] == ("True" if extra == "FetchFailed" else "False")
        assert side["reason"] == reason
    c1.heal(kind, namespace, name)
    await advance_until(sim, lambda: ready(c1.get(kind, namespace, name))[0] == "True")


async def test_helm_upgrade_retries_then_stalls_and_heal_resets(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    c1.fail("HelmRelease", "search", "frontend", "upgrade")

    def release() -> dict[str, Any]:
        obj = c1.get("HelmRelease", "search", "frontend")
        assert obj is not None
        return obj

    await advance_until(sim, lambda: release()["status"].get("upgradeFailures") == 1)
    retrying = cond(release(), "Reconciling")
    assert retrying is not None
    assert retrying["reason"] == "ProgressingWithRetry"
    await advance_until(sim, lambda: cond(release(), "Stalled") is not None)
    stalled = release()
    assert stalled is not None
    st = cond(stalled, "Stalled")
    assert st is not None
    assert (st["status"], st["reason"], st["message"]) == (
        "True",
        "RetriesExceeded",
        "Failed to upgrade after 4 attempt(s)",
    )
    assert stalled["status"]["failures"] == 4
    assert cond(stalled, "Reconciling") is None
    assert [h["status"] for h in stalled["status"]["history"][:4]] == ["failed"] * 4
    c1.heal("HelmRelease", "search", "frontend")
    await advance_until(sim, lambda: ready(release())[0] == "True")
    healed = release()
    assert "failures" not in healed["status"]
    assert cond(healed, "Stalled") is None


async def test_dependency_not_ready_propagates(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    c1.fail("Kustomization", "flux-system", "infra", "build")
    app = ("Kustomization", "payments", "podinfo")
    await advance_until(sim, lambda: ready(c1.get(*app)) == ("False", "DependencyNotReady"))
    dep = cond(c1.get(*app), "Ready")
    assert dep is not None
    assert dep["message"] == "dependency 'flux-system/infra' is not ready"
    c1.heal("Kustomization", "flux-system", "infra")
    await advance_until(sim, lambda: ready(c1.get(*app))[0] == "True")


async def test_commit_rolls_out_through_dependents(sim: SimulatorServer) -> None:
    revision = sim.new_commit("GitRepository", "payments", "podinfo", clusters=["c1", "c2"])
    assert revision.startswith("main@sha1:")
    await sim.advance(700)
    for name in ("c1", "c2"):
        handle = sim.cluster(name)
        repo = handle.get("GitRepository", "payments", "podinfo")
        ks = handle.get("Kustomization", "payments", "podinfo")
        assert repo is not None
        assert ks is not None
        assert repo["status"]["artifact"]["revision"] == revision
        assert ks["status"]["lastAppliedRevision"] == revision
        entry = ks["status"]["history"][0]
        assert entry["metadata"]["revision"] == revision
        assert entry["firstReconciled"] >= repo["status"]["artifact"]["lastUpdateTime"]
    untouched = sim.cluster("c3-legacy").get("GitRepository", "payments", "podinfo")
    assert untouched is not None
    assert untouched["status"]["artifact"]["revision"] != revision


async def test_chart_release_rolls_out_and_canary_promotes(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    sim.new_commit("HelmRepository", "search", "frontend-charts", clusters=["c1"])
    await sim.advance(1300)
    chart = c1.get("HelmChart", "search", "search-frontend")
    release = c1.get("HelmRelease", "search", "frontend")
    canary = c1.get("Canary", "search", "frontend")
    assert chart is not None
    assert release is not None
    assert canary is not None
    version = chart["status"]["artifact"]["revision"]
    history = release["status"]["history"]
    assert (history[0]["chartVersion"], history[0]["status"]) == (version, "deployed")
    assert history[1]["status"] == "superseded"
    assert release["status"]["lastAttemptedRevision"] == version
    assert canary["status"]["phase"] == "Succeeded"


async def test_suspend_leaves_observed_generation_behind(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    c1.suspend("Kustomization", "payments", "podinfo")
    await sim.advance(700)
    ks = c1.get("Kustomization", "payments", "podinfo")
    assert ks is not None
    assert ks["spec"]["suspend"] is True
    assert ks["metadata"]["generation"] == ks["status"]["observedGeneration"] + 1
    c1.resume("Kustomization", "payments", "podinfo")
    await sim.advance(60)
    ks = c1.get("Kustomization", "payments", "podinfo")
    assert ks is not None
    assert "suspend" not in ks["spec"]
    assert ks["metadata"]["generation"] == ks["status"]["observedGeneration"]


def _example(handle: ClusterHandle) -> dict[str, Any]:
    obj = handle.get("Kustomization", "flux-system", "infra")
    assert obj is not None
    obj["status"]["conditions"] = [
        {
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "message": "set by a test",
            "observedGeneration": 1,
            "reason": "PruneFailed",
            "status": "False",
            "type": "Ready",
        }
    ]
    return obj


async def test_apply_and_delete_take_objects_over(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    before = c1.resource_version
    applied = c1.apply(_example(c1))
    assert int(applied["metadata"]["resourceVersion"]) == before + 1
    await sim.advance(1800)
    assert ready(c1.get("Kustomization", "flux-system", "infra")) == ("False", "PruneFailed")
    new = _example(c1)
    new["metadata"] = {"name": "extra", "namespace": "apps"}
    assert c1.delete("Kustomization", "flux-system", "infra")
    assert c1.get("Kustomization", "flux-system", "infra") is None
    c1.apply(new)
    assert c1.get("Kustomization", "apps", "extra") is not None
    with pytest.raises(ValueError, match="does not serve"):
        sim.cluster("c2").apply(
            {"kind": "ImagePolicy", "metadata": {"name": "x", "namespace": "y"}}
        )


async def test_time_scale_runs_the_engine_by_itself(tmp_path: Path) -> None:
    async with SimulatorServer(
        preset("small", seed=1), state_dir=tmp_path, time_scale=600.0
    ) as sim:
        await eventually(lambda: sim.stats()["status_changes"] > 20)


async def test_reconcile_request_is_echoed(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    c1.reconcile("GitRepository", "flux-system", "flux-system")
    obj = c1.get("GitRepository", "flux-system", "flux-system")
    assert obj is not None
    stamp = obj["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    assert "lastHandledReconcileAt" not in obj["status"]
    await sim.advance(5)
    obj = c1.get("GitRepository", "flux-system", "flux-system")
    assert obj is not None
    assert obj["status"]["lastHandledReconcileAt"] == stamp


async def test_wall_clock_scales_the_pace_not_the_timestamps(tmp_path: Path) -> None:
    async with SimulatorServer(
        preset("small", seed=1), state_dir=tmp_path, time_scale=600.0, wall_clock=True
    ) as sim:
        await eventually(lambda: sim.stats()["status_changes"] > 20)
        latest = max(
            c["lastTransitionTime"]
            for name in sim.cluster_names
            for info in KINDS
            for obj in sim.cluster(name).objects(info.kind)
            for c in obj.get("status", {}).get("conditions", [])
        )
        ceiling = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
        assert latest <= ceiling.strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(ValueError, match="wall_clock needs a time_scale"):
        SimulatorServer(preset("small"), state_dir=tmp_path, wall_clock=True)


async def test_canary_analysis_fails_then_promotes_after_heal(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")

    def phase() -> str:
        canary = c1.get("Canary", "search", "frontend")
        assert canary is not None
        return str(canary["status"]["phase"])

    assert phase() == "Succeeded"
    c1.fail("Canary", "search", "frontend", "analysis")
    await advance_until(sim, lambda: phase() == "Progressing")
    await advance_until(sim, lambda: phase() == "Failed")
    failed = c1.get("Canary", "search", "frontend")
    assert failed is not None
    assert failed["status"]["failedChecks"] == 5
    assert cond(failed, "Promoted") is not None
    c1.heal("Canary", "search", "frontend")
    await advance_until(sim, lambda: phase() == "Succeeded")
