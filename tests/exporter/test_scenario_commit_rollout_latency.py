"""Scenario: a new commit lands and rolls out; commit-to-applied latency is observed exactly."""

from __future__ import annotations

from pathlib import Path

from exporter.status import parse_time
from tests.exporter.scrape import value
from tests.exporter.simfleet import running


async def test_new_commit_latency_and_drift(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        revision = run.sim.new_commit("GitRepository", "flux-system", "flux-system")
        await run.sim.advance(120)
        source = run.c1.get("GitRepository", "flux-system", "flux-system")
        assert source is not None
        appeared = parse_time(source["status"]["artifact"]["lastUpdateTime"])
        assert appeared is not None
        latencies = []
        for name in ("flux-system", "infra"):  # both follow the flux-system repository
            k = run.c1.get("Kustomization", "flux-system", name)
            assert k is not None
            assert k["status"]["lastAppliedRevision"] == revision
            entry = next(h for h in k["status"]["history"] if h["metadata"]["revision"] == revision)
            applied = parse_time(entry["firstReconciled"])
            assert applied is not None
            latencies.append(applied - appeared)
        data = await run.until(
            lambda d: (
                value(d, "flux_revision_apply_latency_seconds_count", kind="Kustomization") == 2
            ),
            "two latencies",
        )
        assert value(data, "flux_revision_apply_latency_seconds_sum", kind="Kustomization") == sum(
            latencies
        )
        assert value(data, "flux_resource_revisions_applied_total", kind="Kustomization") == 2
        for name in ("flux-system", "infra"):
            labels = {"kind": "Kustomization", "namespace": "flux-system", "name": name}
            assert value(data, "flux_resource_revision_drift", **labels) == 0
            assert value(data, "flux_resource_info", applied_revision=revision, **labels) == 1
        applied = [t for t in run.transitions.got if t.type == "revision_applied"]
        assert sorted((t.name, t.revision) for t in applied) == [
            ("flux-system", revision),
            ("infra", revision),
        ]
        # The watch streams of the two kinds race: when the apply is seen before the source's
        # new artifact, the transition goes out at once without a latency and the histogram
        # gets it when the source shows the revision.
        for t in applied:
            assert t.latency_seconds in (None, latencies[("flux-system", "infra").index(t.name)])


async def test_drift_shows_while_the_commit_is_not_applied(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        # the Kustomization's build fails, so the new commit cannot be applied
        run.c1.fail("Kustomization", "flux-system", "flux-system", "build")
        revision = run.sim.new_commit("GitRepository", "flux-system", "flux-system")
        await run.sim.advance(120)
        labels = {"kind": "Kustomization", "namespace": "flux-system", "name": "flux-system"}
        data = await run.until(
            lambda d: (
                value(d, "flux_resource_revision_drift", wanted_revision=revision, **labels) == 1
            ),
            "drift",
        )
        since = value(data, "flux_resource_revision_drift_since_timestamp_seconds", **labels)
        assert since is not None
        # failing, or retrying (progressing) with the build failure as its root reason
        await run.until(
            lambda d: value(d, "flux_resource_status", root_reason="BuildFailed", **labels) == 1,
            "the build failure",
        )
