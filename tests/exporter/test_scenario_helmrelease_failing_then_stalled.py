"""Scenario: a HelmRelease upgrade fails, retries, stalls and recovers (exact metrics, HTTP)."""

from __future__ import annotations

from pathlib import Path

from exporter.status import parse_time
from tests.exporter.scrape import value
from tests.exporter.simfleet import ref, running


async def test_failing_then_stalled_then_recovered(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        ns, name = ref(run.c1.objects("HelmRelease")[0])
        hr = {"kind": "HelmRelease", "namespace": ns, "name": name}
        run.c1.fail("HelmRelease", ns, name, "upgrade")
        first_failure = None
        for _ in range(24):  # 120 s in 5 s steps: note when the upgrade first failed
            await run.sim.advance(5)
            obj = run.c1.get("HelmRelease", ns, name)
            assert obj is not None
            ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
            if first_failure is None and ready["status"] == "False":
                first_failure = ready["lastTransitionTime"]
        assert first_failure is not None
        status = obj["status"]
        assert ready["status"] == "False"
        assert status["failures"] > 1  # it retried: Ready went Unknown and False again
        assert ready["lastTransitionTime"] > first_failure
        data = await run.until(
            lambda d: (
                value(d, "flux_helmrelease_upgrade_failures", **hr) == status["upgradeFailures"]
            ),
            "the upgrade failures",
        )
        assert (
            value(data, "flux_resource_status", status="failing", reason="UpgradeFailed", **hr) == 1
        )
        assert value(data, "flux_resource_status", root_kind="HelmRelease", root_name=name) == 1
        # Failing since the first failure, not since the latest retry.
        assert value(data, "flux_resource_status_since_timestamp_seconds", **hr) == parse_time(
            first_failure
        )
        assert value(data, "flux_helmrelease_failures", **hr) == status["failures"]
        assert (
            value(data, "flux_helmrelease_last_attempted_action_info", action="upgrade", **hr) == 1
        )
        assert value(data, "flux_cluster_resources", kind="HelmRelease", status="failing") == 1

        await run.sim.advance(360)  # retries exhausted: Stalled
        obj = run.c1.get("HelmRelease", ns, name)
        assert obj is not None
        stalled = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
        data = await run.until(
            lambda d: value(d, "flux_resource_status", status="stalled", **hr) == 1, "stalled"
        )
        assert value(data, "flux_resource_status", reason="RetriesExceeded", **hr) == 1
        assert value(data, "flux_resource_status_since_timestamp_seconds", **hr) == parse_time(
            stalled["lastTransitionTime"]
        )
        assert value(data, "flux_cluster_resources", kind="HelmRelease", status="stalled") == 1
        assert value(data, "flux_cluster_resources", kind="HelmRelease", status="failing") == 0
        assert value(data, "flux_resource_transitions_total", kind="HelmRelease", to="stalled") == 1

        run.c1.heal("HelmRelease", ns, name)
        await run.sim.advance(1200)
        obj = run.c1.get("HelmRelease", ns, name)
        assert obj is not None
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        data = await run.until(
            lambda d: value(d, "flux_resource_status", status="ready", **hr) == 1, "recovery"
        )
        assert value(data, "flux_resource_time_to_recover_seconds_count", kind="HelmRelease") == 1
        failing_since = [t for t in run.transitions.got if t.type == "failing" and t.name == name]
        assert len(failing_since) == 1
        types = [t.type for t in run.transitions.got if t.name == name and t.kind == "HelmRelease"]
        assert types[:2] == ["failing", "stalled"]
        assert "recovered" in types
