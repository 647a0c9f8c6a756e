"""The real Prometheus server scrapes a live exporter (OpenMetrics) and answers exact queries."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp

from exporter.kinds import KINDS
from simulator.kinds import BY_KIND
from simulator.scenario import preset
from tests.exporter.scrape import series, value
from tests.exporter.simfleet import ref, running
from tests.prometheus import Job, api_get, poll, running_prometheus

T = TypeVar("T")


async def _some(pending: Awaitable[list[T]]) -> list[T] | None:
    return (await pending) or None


def failing_now(obj: dict[str, Any] | None) -> bool:
    """Ready=False without Stalled: the object is in its retry loop, not yet out of retries."""
    assert obj is not None
    conditions = obj["status"].get("conditions", [])
    ready = [c for c in conditions if c["type"] == "Ready"]
    stalled = any(c["type"] == "Stalled" and c["status"] == "True" for c in conditions)
    return bool(ready) and ready[0]["status"] == "False" and not stalled


async def test_real_prometheus_scrapes_and_queries_the_exporter(tmp_path: Path) -> None:
    async with running(tmp_path, scenario=preset("small")) as run:
        ns, name = ref(run.c1.objects("HelmRelease")[0])
        hr = {"cluster": "c1", "kind": "HelmRelease", "namespace": ns, "name": name}
        run.c1.fail("HelmRelease", ns, name, "upgrade")
        # The manual clock only moves on advance: step until the upgrade has failed (retries left),
        # then nothing changes any more while Prometheus scrapes.
        for _ in range(60):
            await run.sim.advance(5)
            if failing_now(run.c1.get("HelmRelease", ns, name)):
                break
        else:
            raise AssertionError("the HelmRelease never reached Ready=False")
        exported = await run.until(
            lambda d: value(d, "flux_resource_status", status="failing", **hr) == 1,
            "the exporter to show the HelmRelease failing",
        )
        (labels,) = series(exported, "flux_resource_status", **hr)
        assert labels["status"] == "failing"
        assert labels["reason"] == "UpgradeFailed"
        per_status = {
            s: value(exported, "flux_cluster_resources", cluster="c1", kind="HelmRelease", status=s)
            for s in ("failing", "stalled")
        }
        bad = sum(v or 0.0 for v in per_status.values())
        assert (per_status["failing"] or 0) >= 1
        served = sum(
            len(run.sim.cluster(c).objects(k.kind))
            for c in run.sim.cluster_names
            for k in KINDS
            if k.kind in BY_KIND
        )
        assert served > 0

        target = urlsplit(run.exporter.url).netloc
        jobs = [Job("fluxwatch", [target])]
        async with running_prometheus(tmp_path, run.http, jobs) as prom:
            await check_prometheus(run.http, prom.url, prom.log, target, hr, labels, served, bad)


async def check_prometheus(
    http: aiohttp.ClientSession,
    api: str,
    log: Path,
    target: str,
    hr: dict[str, str],
    labels: Mapping[str, str],
    served: int,
    bad: float,
) -> None:
    last_seen: list[object] = []  # the last target list, so a timeout shows lastError

    async def target_up() -> dict[str, Any] | None:
        async with http.get(f"{api}/api/v1/targets") as resp:
            if resp.status != 200:
                return None
            body = await resp.json()
        active = body["data"]["activeTargets"]
        last_seen[:] = [active]
        if len(active) == 1 and active[0]["health"] == "up":
            found: dict[str, Any] = active[0]
            return found
        return None

    async def query(expr: str) -> list[dict[str, Any]]:
        async def once() -> list[dict[str, Any]] | None:
            body = await api_get(http, f"{api}/api/v1/query", {"query": expr})
            result: list[dict[str, Any]] = body["data"]["result"]
            assert body["data"]["resultType"] == "vector", body
            return result or None

        return await poll(once, f"a result for {expr}", log)

    try:
        up = await poll(target_up, "the exporter target to be up", log)
    except AssertionError as err:
        raise AssertionError(f"{err}\nlast targets seen: {last_seen}") from None
    assert up["lastError"] == ""
    assert up["labels"]["instance"] == target
    assert up["scrapeUrl"] == f"http://{target}/metrics"

    # OpenMetrics was negotiated: its counter family drops "_total" (text 0.0.4 would keep it), and
    # Prometheus records the family name it parsed as the target's metadata.
    async def metadata(metric: str) -> list[dict[str, Any]]:
        params = {"match_target": '{job="fluxwatch"}', "metric": metric}
        body = await api_get(http, f"{api}/api/v1/targets/metadata", params)
        found: list[dict[str, Any]] = body["data"]
        return found

    (family,) = await poll(
        lambda: _some(metadata("flux_resource_transitions")), "counter metadata", log
    )
    assert family["type"] == "counter"
    assert await metadata("flux_resource_transitions_total") == []

    selector = ",".join(f'{k}="{v}"' for k, v in sorted(hr.items()))
    (status,) = await query(f"flux_resource_status{{{selector}}}")
    assert status["metric"] == {
        "__name__": "flux_resource_status",
        "job": "fluxwatch",
        "instance": target,
        **labels,
    }
    assert status["metric"]["status"] == "failing"
    assert status["metric"]["reason"] == "UpgradeFailed"
    assert status["value"][1] == "1"

    (reachable,) = await query("count(flux_cluster_reachable == 1)")
    assert reachable["value"][1] == "3"
    (total,) = await query("sum(flux_cluster_resources)")
    assert total["value"][1] == str(served)
    (failing,) = await query(
        'sum by (cluster, kind) (flux_cluster_resources{cluster="c1",kind="HelmRelease",'
        'status=~"failing|stalled"})'
    )
    assert failing["metric"] == {"cluster": "c1", "kind": "HelmRelease"}
    assert float(failing["value"][1]) == bad

    # A staleness rule from docs/metrics.md evaluates; the fleet just synced, so nothing is stale.
    stale = "time() - flux_cluster_last_full_sync_timestamp_seconds > 3600"
    body = await api_get(http, f"{api}/api/v1/query", {"query": stale})
    assert body["data"]["result"] == []
