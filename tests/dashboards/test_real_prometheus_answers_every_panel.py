"""Every dashboard query, every variable query and every docs/metrics.md example goes to the
real Prometheus scraping the exporter (and two Flux controller pods): Prometheus accepts each,
and the fleet, cluster, rollout, delivery and controller panels show what the scenario did."""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from catalogue import bridge
from catalogue.controllers import CONTROLLERS
from dashboards.build import generate, queries
from dashboards.settings import DashboardSettings
from tests.conftest import REPO_ROOT
from tests.dashboards.inspect import CATALOGUE, base_name, exprs, metric_names, variable_queries
from tests.dashboards.world import CONTROLLER_PODS, World, instantiate, world

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

BOARDS = generate()
RAW_BOARDS = generate(DashboardSettings(recording_rules=False))
QUERIES = queries()
ALL_CONTROLLERS = {"controller": "|".join(CONTROLLERS)}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with world(tmp_path_factory.mktemp("dashboards")) as w:
        yield w


async def ask(w: World, board: str, key: str, **values: str) -> list[dict[str, Any]]:
    return await w.prom.query(instantiate(QUERIES[board][key], {**ALL_CONTROLLERS, **values}))


def number(result: list[dict[str, Any]]) -> float:
    (sample,) = result
    return float(sample["value"][1])


def docs_examples() -> list[str]:
    """Each PromQL expression in docs/metrics.md's ```promql blocks (comments dropped; an
    indented line continues the expression above it)."""
    text = (REPO_ROOT / "docs" / "metrics.md").read_text()
    found: list[str] = []
    for block in re.findall(r"```promql\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith((" ", "\t")) and found:
                found[-1] += "\n" + line
            else:
                found.append(line)
    return found


async def test_prometheus_accepts_every_panel_query(fleet: World) -> None:
    count = 0
    boards = [*BOARDS.items(), *RAW_BOARDS.items()]
    for uid, board in boards:
        values = {"cluster": "c1"} if uid.endswith("-cluster") else {}
        for expr in exprs(board):
            sent = instantiate(expr, {**ALL_CONTROLLERS, **values})
            await fleet.prom.query(sent)  # raises unless HTTP 200 and status success
            body = await fleet.prom.get(
                "/api/v1/query_range",
                query=sent,
                start=str(math.floor(time.time()) - 60),
                end=str(math.floor(time.time())),
                step="15",
            )
            assert body["data"]["resultType"] == "matrix", sent
            count += 1
    assert count == sum(len(list(exprs(b))) for _, b in boards)
    assert count > 200


async def test_every_variable_lists_values_from_a_real_scrape(fleet: World) -> None:
    for board in BOARDS.values():
        for query in variable_queries(board):
            m = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
            assert m, query
            body = await fleet.prom.get(
                f"/api/v1/label/{m.group(2)}/values", **{"match[]": instantiate(m.group(1), {})}
            )
            assert body["data"], f"no values for {query}"
    fleet_vars = {v["name"]: v for v in BOARDS["fluxwatch-fleet"]["templating"]["list"]}
    m = re.fullmatch(r"label_values\((.*), (\w+)\)", fleet_vars["cluster"]["query"])
    assert m
    body = await fleet.prom.get(
        "/api/v1/label/cluster/values", **{"match[]": instantiate(m.group(1), {})}
    )
    assert body["data"] == ["c1", "c2", "c3"]


async def test_every_docs_example_is_accepted(fleet: World) -> None:
    examples = docs_examples()
    assert len(examples) >= 20
    assert any("group_left(action)" in e for e in examples)
    for expr in examples:
        await fleet.prom.query(expr)


async def test_fleet_overview_shows_the_failing_helmrelease_with_its_reason(fleet: World) -> None:
    assert number(await ask(fleet, "fleet", "clusters_total")) == 3
    assert number(await ask(fleet, "fleet", "clusters_reachable")) == 3
    assert number(await ask(fleet, "fleet", "clusters_synced")) == 3
    assert number(await ask(fleet, "fleet", "objects_bad")) >= 2  # the HelmRelease, c2's build
    ns, name = fleet.failing_hr
    top = [r["metric"] for r in await ask(fleet, "fleet", "top_failing")]
    (hr,) = [m for m in top if m["kind"] == "HelmRelease" and m["name"] == name]
    assert hr["cluster"] == "c1"
    assert hr["namespace"] == ns
    assert hr["status"] == "failing"
    assert hr["reason"] == "UpgradeFailed"
    assert hr["root_name"] == name
    assert any(m["cluster"] == "c2" and m["reason"] == "BuildFailed" for m in top)
    by_status = {
        r["metric"]["status"]: float(r["value"][1])
        for r in await ask(fleet, "fleet", "objects_by_status")
    }
    assert by_status["failing"] >= 2
    assert by_status["suspended"] == 1
    worst = await ask(fleet, "fleet", "cluster_health")
    assert {r["metric"]["cluster"] for r in worst} == {"c1", "c2", "c3"}
    assert float(worst[0]["value"][1]) >= 1
    assert worst[-1]["metric"]["cluster"] == "c3"
    (suspended,) = await ask(fleet, "fleet", "suspended")
    assert suspended["metric"]["cluster"] == "c3"
    assert suspended["metric"]["name"] == "catalog-config"
    drifting = await ask(fleet, "fleet", "drifting")
    assert any(
        r["metric"]["cluster"] == "c2" and r["metric"]["wanted_revision"] == fleet.revision
        for r in drifting
    )
    for q in ("latency_p50", "latency_p90", "latency_p99"):
        value = number(await ask(fleet, "fleet", q))
        assert 0 < value < 86400, q
    roots = await ask(fleet, "fleet", "problems_by_root")
    assert any(r["metric"]["root_reason"] == "UpgradeFailed" for r in roots)
    clusters = {
        r["metric"]["cluster"]: float(r["value"][1])
        for r in await ask(fleet, "fleet", "cluster_bad")
    }
    assert clusters["c1"] >= 1
    assert clusters["c3"] == 0


async def test_cluster_dashboard_lists_every_object_of_the_cluster(fleet: World) -> None:
    objects = await ask(fleet, "cluster", "objects", cluster="c1")
    served = sum(
        len(fleet.run.c1.objects(k))
        for k in (
            "Kustomization",
            "HelmRelease",
            "GitRepository",
            "HelmRepository",
            "HelmChart",
            "OCIRepository",
            "Bucket",
        )
    )
    assert len(objects) == served
    assert {r["metric"]["cluster"] for r in objects} == {"c1"}
    ns, name = fleet.failing_hr
    (hr,) = [r["metric"] for r in objects if r["metric"]["kind"] == "HelmRelease"]
    assert (hr["namespace"], hr["name"], hr["status"], hr["reason"]) == (
        ns,
        name,
        "failing",
        "UpgradeFailed",
    )
    (ks,) = [
        r["metric"]
        for r in objects
        if r["metric"]["name"] == "flux-system" and r["metric"]["kind"] == "Kustomization"
    ]
    assert ks["applied_revision"] == fleet.revision
    assert ks["source_name"] == "flux-system"
    assert len(await ask(fleet, "cluster", "objects_last_success", cluster="c1")) > 0
    assert number(await ask(fleet, "cluster", "objects_bad", cluster="c3")) == 0


async def test_rollout_shows_clusters_applied_and_the_one_lagging(fleet: World) -> None:
    ks = {"object": "flux-system", "kind": "Kustomization"}
    progress = {
        (r["metric"]["revision"], r["metric"]["state"]): float(r["value"][1])
        for r in await ask(fleet, "rollouts", "progress", **ks)
    }
    # c1 and c3 applied the second commit; c2 attempts it and fails to build
    assert progress == {(fleet.revision, "applied"): 2, (fleet.revision, "failing"): 1}
    for state, clusters in (("applied", 2), ("failing", 1)):
        (row,) = await ask(fleet, "rollouts", f"now_{state}", **ks)
        assert row["metric"] == {
            "kind": "Kustomization",
            "namespace": "flux-system",
            "name": "flux-system",
            "revision": fleet.revision,
        }
        assert float(row["value"][1]) == clusters
    assert await ask(fleet, "rollouts", "now_pending", **ks) == []
    lagging = await ask(fleet, "rollouts", "lagging", **ks)
    assert {r["metric"]["cluster"] for r in lagging} == {"c2"}
    assert {r["metric"]["wanted_revision"] for r in lagging} == {fleet.revision}
    assert 0 < number(await ask(fleet, "rollouts", "latency_p50")) < 86400
    buckets = await fleet.prom.query(
        instantiate(QUERIES["rollouts"]["latency_buckets"].replace("$__rate_interval", "1h"), {})
    )
    assert sum(float(r["value"][1]) for r in buckets if r["metric"]["le"] == "+Inf") >= 2


async def test_delivery_observes_deployments_and_time_to_restore(fleet: World) -> None:
    restore = number(await ask(fleet, "delivery", "time_to_restore_p50"))
    assert 0 < restore < 604800
    assert number(await ask(fleet, "delivery", "deploys_per_day")) > 0
    assert 0 < number(await ask(fleet, "delivery", "lead_time_p50")) < 86400
    rate = number(await ask(fleet, "delivery", "change_failure_rate"))
    assert 0 < rate <= 1
    by_tenant = {
        r["metric"].get("tenant", ""): float(r["value"][1])
        for r in await ask(fleet, "delivery", "restore_by_tenant")
    }
    assert by_tenant["payments"] > 0  # podinfo belongs to the payments tenant
    deploys = {
        r["metric"].get("tenant", ""): float(r["value"][1])
        for r in await ask(fleet, "delivery", "deploys_by_tenant")
    }
    assert deploys[""] > 0  # flux-system Kustomizations carry no tenant


async def test_controller_panels_match_main_and_sharded_pods(fleet: World) -> None:
    pods = {r["metric"]["pod"] for r in await ask(fleet, "controllers", "per_pod")}
    assert pods == set(CONTROLLER_PODS)
    results = {r["metric"]["result"] for r in await ask(fleet, "controllers", "reconciles")}
    assert results == {"success", "error"}
    (p99,) = await ask(fleet, "controllers", "duration_p99")
    assert p99["metric"] == {"kind": "Kustomization"}
    (slow,) = await ask(fleet, "controllers", "slowest")
    assert slow["metric"]["exported_namespace"] == "payments"
    assert len(await ask(fleet, "controllers", "queue_depth")) == 2
    only_main = instantiate(QUERIES["controllers"]["per_pod"], {"controller": "helm-controller"})
    assert await fleet.prom.query(only_main) == []


async def test_fluxwatch_dashboard_sees_the_exporter(fleet: World) -> None:
    assert number(await ask(fleet, "fluxwatch", "up")) == 1
    assert number(await ask(fleet, "fluxwatch", "objects")) > 0
    assert number(await ask(fleet, "fluxwatch", "unreachable")) == 0
    assert len(await ask(fleet, "fluxwatch", "sync_age")) == 3
    assert number(await ask(fleet, "fluxwatch", "scrape_samples")) > 100


async def test_sources_show_which_cluster_has_which_revision(fleet: World) -> None:
    rows = await ask(fleet, "sources", "revision_by_cluster", source="flux-system")
    git = {
        r["metric"]["cluster"]: r["metric"]["applied_revision"]
        for r in rows
        if r["metric"]["kind"] == "GitRepository"
    }
    assert git == dict.fromkeys(
        ("c1", "c2", "c3"), fleet.revision
    )  # c2 fetched it, cannot apply it
    counts = {
        (r["metric"]["kind"], r["metric"]["name"]): float(r["value"][1])
        for r in await ask(fleet, "sources", "revisions_per_source")
    }
    assert counts[("GitRepository", "flux-system")] == 1
    kinds = {r["metric"]["kind"] for r in await ask(fleet, "sources", "artifact_size")}
    assert {"GitRepository", "OCIRepository", "Bucket", "HelmRepository"} <= kinds
    assert number(await ask(fleet, "sources", "failing_count")) == 0


async def test_team_dashboard_filters_by_tenant(fleet: World) -> None:
    search = number(await ask(fleet, "tenant", "objects", tenant="search"))
    everyone = number(await ask(fleet, "tenant", "objects"))
    assert 0 < search < everyone
    failing = await ask(fleet, "tenant", "failing", tenant="search")
    assert [(r["metric"]["cluster"], r["metric"]["kind"]) for r in failing] == [
        ("c1", "HelmRelease")
    ]
    # payments/podinfo in c2 waits on infra, which waits on the flux-system build that fails:
    # the team sees it failing, with the platform's Kustomization as the root cause.
    for row in await ask(fleet, "tenant", "failing", tenant="payments"):
        assert row["metric"]["cluster"] == "c2"
        assert (row["metric"]["root_name"], row["metric"]["root_reason"]) == (
            "flux-system",
            "BuildFailed",
        )


# Labelled counters with no series until their first event (nothing in the scenario drops a
# transition, sends a malformed object or fails an API call), and the bridge, not run here.
FIRST_EVENT_ONLY = {
    "fluxwatch_exporter_transitions_dropped_total",
    "fluxwatch_exporter_malformed_objects_total",
    "fluxwatch_exporter_api_errors_total",
    "fluxwatch_exporter_decode_errors_total",
    "fluxwatch_exporter_watch_restarts_total",
    "fluxwatch_exporter_relists_total",
}


async def test_every_metric_the_dashboards_use_is_in_a_real_scrape(fleet: World) -> None:
    used: set[str] = set()
    for board in [*BOARDS.values(), *RAW_BOARDS.values()]:
        for expr in [*exprs(board), *variable_queries(board)]:
            used |= {base_name(n) for n in metric_names(expr) if ":" not in n}
    assert used - set(bridge.BY_NAME), "no metric found"
    missing = []
    for name in sorted(used - set(bridge.BY_NAME) - FIRST_EVENT_ONLY):
        spec = CATALOGUE[name]
        series = f"{name}_count" if spec.type == "histogram" else name
        body = await fleet.prom.get("/api/v1/series", **{"match[]": series})
        if not body["data"]:
            missing.append(name)
    assert missing == []
