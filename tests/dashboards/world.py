"""One simulated fleet, the exporter watching it, stand-ins for two Flux controller pods, and
the real Prometheus scraping them all, driven through a scenario every dashboard can show.

The scenario (manual simulator clock, started an hour in the past so that timestamps stay
behind the wall clock Prometheus compares them with):

- ``c3`` Kustomization ``identity/catalog-config`` is suspended;
- ``c2`` Kustomization ``flux-system/flux-system`` fails to build, so ``c2`` lags behind;
- ``c1`` Kustomization ``payments/podinfo`` fails and is healed twice (time to restore);
- two commits land on ``GitRepository flux-system/flux-system`` in every cluster (rollout,
  commit-to-applied latency, deployments);
- ``c1`` HelmRelease ``search/frontend`` fails its upgrade and is left failing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from alerts.render import render
from alerts.settings import AlertSettings
from simulator.scenario import AppMix, ClusterSpec, Scenario
from tests.exporter.simfleet import Running, running
from tests.prometheus import Job, Prometheus, running_prometheus

APPS = AppMix(git=1, helm=1, oci=1, bucket=1, image=0, canary=0, notification=0)
SCENARIO = Scenario(
    name="dashboards",
    seed=7,
    clusters=(
        ClusterSpec("c1", apps=APPS),
        ClusterSpec("c2", apps=APPS),
        ClusterSpec("c3", apps=APPS),
    ),
)
STEP = 5.0  # simulated seconds per advance while waiting for a state
CONTROLLER_PODS = (
    "kustomize-controller-7d9f8b7c4-abcde",
    "kustomize-controller-shard1-5d8f7c9b6d-x2v4q",
)


@dataclass
class World:
    run: Running
    prom: Prometheus
    revision: str  # the second commit's revision
    failing_hr: tuple[str, str]  # namespace, name of the failing HelmRelease in c1


def condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    assert obj is not None
    for c in obj["status"].get("conditions", []):
        if c["type"] == kind:
            status: str = c["status"]
            return status
    return None


async def step_until(run: Running, check: Callable[[], bool], what: str, limit: int = 120) -> None:
    """Advance the simulated clock in small steps until ``check`` holds."""
    for _ in range(limit):
        if check():
            return
        await run.sim.advance(STEP)
    raise AssertionError(f"the simulator never reached: {what}")


class ControllerStandIn:
    """/metrics of a Flux controller pod as controller-runtime and fluxcd/pkg write it; the
    counters move on every scrape so rates are not zero."""

    def __init__(self) -> None:
        self.scrapes = 0

    async def metrics(self, request: web.Request) -> web.Response:
        self.scrapes += 1
        n = self.scrapes
        lines = [
            "# TYPE controller_runtime_reconcile_total counter",
            'controller_runtime_reconcile_total{controller="kustomization",result="success"} '
            f"{3 * n}",
            f'controller_runtime_reconcile_total{{controller="kustomization",result="error"}} {n}',
            "# TYPE controller_runtime_reconcile_errors_total counter",
            f'controller_runtime_reconcile_errors_total{{controller="kustomization"}} {n}',
            "# TYPE controller_runtime_active_workers gauge",
            'controller_runtime_active_workers{controller="kustomization"} 1',
            "# TYPE workqueue_depth gauge",
            'workqueue_depth{name="kustomization"} 4',
        ]
        for family, labels in (
            ("controller_runtime_reconcile_time_seconds", 'controller="kustomization"'),
            (
                "gotk_reconcile_duration_seconds",
                'kind="Kustomization",name="podinfo",namespace="payments"',
            ),
            ("workqueue_queue_duration_seconds", 'name="kustomization"'),
        ):
            lines.append(f"# TYPE {family} histogram")
            for le, share in (("0.1", 0), ("1", 2), ("10", 4), ("+Inf", 4)):
                lines.append(f'{family}_bucket{{{labels},le="{le}"}} {share * n}')
            lines += [f"{family}_sum{{{labels}}} {2.5 * n}", f"{family}_count{{{labels}}} {4 * n}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


@asynccontextmanager
async def controller_stand_in() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/metrics", ControllerStandIn().metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"{host}:{port}"
    finally:
        await runner.cleanup()


async def scenario(run: Running, prom: Prometheus) -> tuple[str, tuple[str, str]]:
    sim = run.sim
    c1, c2, c3 = (sim.cluster(n) for n in ("c1", "c2", "c3"))
    c3.suspend("Kustomization", "identity", "catalog-config")
    c2.fail("Kustomization", "flux-system", "flux-system", "build")

    podinfo = ("Kustomization", "payments", "podinfo")
    for restored in (1, 2):
        c1.fail(*podinfo, "build")
        await step_until(
            run, lambda: condition(c1.get(*podinfo), "Ready") == "False", "podinfo failing"
        )
        await prom.until(
            'flux_resource_status{cluster="c1",name="podinfo",status="failing"}',
            bool,
            "Prometheus to see podinfo failing",
        )
        c1.heal(*podinfo)
        await step_until(
            run, lambda: condition(c1.get(*podinfo), "Ready") == "True", "podinfo ready"
        )
        await prom.until(
            'sum(flux_resource_time_to_recover_seconds_count{cluster="c1"})',
            lambda r, n=restored: bool(r) and float(r[0]["value"][1]) >= n,
            f"Prometheus to see {restored} recoveries",
        )

    revision = ""
    for commit in (1, 2):
        revision = sim.new_commit("GitRepository", "flux-system", "flux-system")

        def applied(cluster: str, rev: str = revision) -> bool:
            k = sim.cluster(cluster).get("Kustomization", "flux-system", "flux-system")
            return k is not None and k["status"].get("lastAppliedRevision") == rev

        await step_until(run, lambda: applied("c1") and applied("c3"), f"commit {commit} applied")
        await prom.until(
            f'count(flux_resource_info{{kind="Kustomization",name="flux-system",applied_revision="{revision}"}})',
            lambda r: bool(r) and float(r[0]["value"][1]) == 2,
            f"Prometheus to see commit {commit} applied in c1 and c3",
        )
        await prom.until(
            "sum(flux_revision_apply_latency_seconds_count)",
            lambda r, n=commit: bool(r) and float(r[0]["value"][1]) >= 2 * n,
            f"Prometheus to see the latency of commit {commit}",
        )

    # Catch up with the wall clock (the simulator started an hour ago), so that ages are true.
    behind = (dt.datetime.now(dt.UTC) - sim.now).total_seconds() - 30
    if behind > 0:
        await sim.advance(behind)

    hr = ("HelmRelease", "search", "frontend")
    c1.fail(*hr, "upgrade")

    def failing_not_stalled() -> bool:
        return (
            condition(c1.get(*hr), "Ready") == "False"
            and condition(c1.get(*hr), "Stalled") != "True"
        )

    await step_until(run, failing_not_stalled, "the HelmRelease failing")
    await prom.until(
        'flux_resource_status{cluster="c1",kind="HelmRelease",status="failing"}',
        bool,
        "Prometheus to see the HelmRelease failing",
    )
    # The recording rules have evaluated the end state too.
    await prom.until(
        'cluster:flux_cluster_resources_failing:sum{cluster="c1"}',
        lambda r: bool(r) and float(r[0]["value"][1]) >= 1,
        "the recorded failing count of c1",
    )
    await prom.until(
        "histogram_quantile(0.5, sum by (le) "
        "(kind_le:flux_revision_apply_latency_seconds_bucket:rate1h))",
        lambda r: bool(r) and r[0]["value"][1] not in ("NaN", "+Inf"),
        "the recorded commit-to-applied latency",
    )
    return revision, (hr[1], hr[2])


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    async with (
        running(tmp_path, scenario=SCENARIO, start_time=start) as run,
        controller_stand_in() as ctl,
    ):
        exporter = urlsplit(run.exporter.url).netloc
        jobs = [Job("fluxwatch", [exporter])]
        for i, pod in enumerate(CONTROLLER_PODS):
            labels = {"cluster": "c1", "namespace": "flux-system", "pod": pod}
            jobs.append(Job(f"flux-controller-{i}", [ctl], labels))
        # The recording rules the dashboards read, as `fluxwatch alerts build` writes them, but
        # evaluated every second instead of every minute so the test need not wait.
        rules = tmp_path / "fluxwatch-rules.yaml"
        text = render(AlertSettings(), "rules")
        assert "  interval: 1m\n" in text
        rules.write_text(text.replace("  interval: 1m\n", "  interval: 1s\n"))
        async with running_prometheus(tmp_path, run.http, jobs, rule_files=[rules]) as prom:
            revision, hr = await scenario(run, prom)
            yield World(run, prom, revision, hr)


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def instantiate(expr: str, values: dict[str, str]) -> str:
    """``expr`` as Grafana would send it with these variable values (All = ``.*``)."""
    builtins = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return {**builtins, **values}.get(name, ".*")

    return _VARIABLE.sub(sub, expr)
