"""End to end with real binaries: a HelmRelease fails in the simulator, the exporter shows it,
Prometheus evaluates the generated rules, Alertmanager (shipped configuration) sends the alert to
the bridge, and the bridge delivers it to the team owning the namespace; resolved after the fix.
Then one bad release failing on every cluster reaches the team as ONE fleet-level notification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.scenario import ClusterSpec, Scenario
from tests.alerts.loop import Loop, alert_loop
from tests.exporter.simfleet import APPS
from tests.notifiers.fakes import drained, eventually, holds_throughout

HR = ("HelmRelease", "search", "frontend")


def scenario(*clusters: str) -> Scenario:
    return Scenario(
        name="alerts", seed=7, clusters=tuple(ClusterSpec(c, apps=APPS) for c in clusters)
    )


async def fail_until_failing(loop: Loop, clusters: tuple[str, ...]) -> None:
    """Inject the upgrade fault and step the manual clock until each release is Ready=False."""
    for c in clusters:
        loop.run.sim.cluster(c).fail(*HR, "upgrade")
    for _ in range(100):
        objs = [loop.run.sim.cluster(c).get(*HR) for c in clusters]
        if all(_ready(o) == "False" for o in objs):
            return
        await loop.run.sim.advance(5)
    raise AssertionError("the HelmReleases never reached Ready=False")


def _ready(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    for cond in obj["status"].get("conditions", []):
        if cond["type"] == "Ready":
            return str(cond["status"])
    return ""


async def test_failing_helmrelease_notifies_its_team_then_resolves(tmp_path: Path) -> None:
    async with alert_loop(tmp_path, scenario("c1")) as loop:
        await fail_until_failing(loop, ("c1",))
        firing = await loop.delivered("search", "FluxResourceFailing", "firing")
        assert {k: firing[k] for k in ("cluster", "kind", "namespace", "name", "reason")} == {
            "cluster": "c1",
            "kind": "HelmRelease",
            "namespace": "search",
            "name": "frontend",
            "reason": "UpgradeFailed",
        }
        assert firing["labels"]["severity"] == "warning"
        assert firing["labels"]["scope"] == "object"
        assert firing["message"] == (
            "HelmRelease search/frontend on c1 has been failing for more than 4s: UpgradeFailed"
        )
        assert firing["metadata"]["runbook_url"].endswith("/FluxResourceFailing.md")
        # the other team hears nothing of it
        await drained(loop.bridge, "payments-hook")
        assert loop.teams["payments"].applied_events() == []

        loop.run.sim.cluster("c1").heal(*HR)
        for _ in range(100):
            if _ready(loop.run.sim.cluster("c1").get(*HR)) == "True":
                break
            await loop.run.sim.advance(5)
        resolved = await loop.delivered("search", "FluxResourceFailing", "resolved")
        assert resolved["name"] == "frontend"
        assert resolved["cluster"] == "c1"
        assert loop.alertmanager.problems() == []


async def test_one_bad_release_on_every_cluster_pages_once(tmp_path: Path) -> None:
    clusters = ("c1", "c2", "c3")
    async with alert_loop(tmp_path, scenario(*clusters)) as loop:
        await fail_until_failing(loop, clusters)
        fleet = await loop.delivered("search", "FluxFleetResourceFailing", "firing")
        assert fleet["labels"]["scope"] == "fleet"
        assert fleet["labels"]["kind"] == "HelmRelease"
        assert fleet["labels"]["name"] == "frontend"
        assert fleet["message"] == (
            "HelmRelease search/frontend is failing on 3 clusters: UpgradeFailed"
        )

        # the per-cluster alerts did fire in Prometheus and reached Alertmanager, inhibited
        await loop.prometheus.until(
            'ALERTS{alertname="FluxResourceFailing",alertstate="firing"}',
            lambda r: len(r) == 3,
            "three per-cluster alerts firing",
        )

        per_cluster: list[dict[str, Any]] = []

        async def all_three_inhibited() -> bool:
            alerts = await loop.alertmanager.alerts(loop.run.http)
            per_cluster[:] = [
                a for a in alerts if a["labels"]["alertname"] == "FluxResourceFailing"
            ]
            return len(per_cluster) == 3 and all(
                a["status"]["state"] == "suppressed" for a in per_cluster
            )

        await eventually(all_three_inhibited, within=20)
        assert len(per_cluster) == 3
        assert {a["labels"]["cluster"] for a in per_cluster} == set(clusters)
        assert all(a["status"]["state"] == "suppressed" for a in per_cluster), per_cluster
        assert all(a["status"]["inhibitedBy"] for a in per_cluster)

        # one notification for the team, and none per cluster while the burst lasts
        await drained(loop.bridge, "search-hook")
        await holds_throughout(
            lambda: loop.alert_events("search", "FluxResourceFailing", "firing") == [], 3.0
        )
        assert len(loop.alert_events("search", "FluxFleetResourceFailing", "firing")) == 1
        assert len(loop.teams["search"].applied) == 1
