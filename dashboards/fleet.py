"""Fleet overview: what is failing, where, since when and why, across every cluster.

Also the source of the per-object queries the Cluster dashboard reuses: with the ``cluster``
variable set to one cluster they answer the same questions for that cluster.
"""

from __future__ import annotations

from typing import Any

from catalogue.exporter import (
    APPLY_LATENCY,
    CLUSTER_LAST_FULL_SYNC,
    CLUSTER_REACHABLE,
    CLUSTER_RESOURCES,
    CLUSTER_SYNCED,
    RESOURCE_DRIFT,
    RESOURCE_DRIFT_SINCE,
    RESOURCE_INTERVAL,
    RESOURCE_LAST_ATTEMPT,
    RESOURCE_LAST_SUCCESS,
    RESOURCE_STATUS,
    RESOURCE_STATUS_SINCE,
)
from dashboards.common import (
    Context,
    Grid,
    age_table,
    dashboard,
    drilldown,
    stat,
    state_timeline,
    table,
    target,
    timeseries,
)
from dashboards.promql import BAD, NOT_READY, PromQL, eq
from dashboards.recording import record, rule

NAME = "fleet"
TITLE = "Flux fleet overview"
ROOT_LABELS = ("status", "reason", "root_kind", "root_namespace", "root_name", "root_reason")
QUANTILES = (0.5, 0.9, 0.99)


def queries(ctx: Context, fleet_wide: bool = True) -> dict[str, str]:
    """Every query of the fleet overview, by panel: the one place that decides between the
    exporter's series and the recording rules. ``fleet_wide=False`` gives the per-cluster
    variants the Cluster dashboard uses (one cluster's raw series are few; the rules are
    fleet-wide)."""
    q: PromQL = ctx.q
    s = ctx.settings
    by_cluster = q.by("cluster")
    on = q.identity
    factor = f"{s.stale_factor:g}"
    since = q.sel(RESOURCE_STATUS_SINCE)

    def age_of(status_matcher: str, labels: tuple[str, ...]) -> str:
        """Seconds each matching object has been in its status, carrying ``labels``."""
        matching = q.sel(RESOURCE_STATUS, status=status_matcher)
        joined = f"{since} * {on} group_left({', '.join(labels)}) {matching}"
        return f"time() - ({joined})"

    out = {
        "clusters_total": f"count({q.sel(CLUSTER_REACHABLE)})",
        "clusters_reachable": f"sum({q.sel(CLUSTER_REACHABLE)})",
        "clusters_synced": f"sum({q.sel(CLUSTER_SYNCED)})",
        "objects_total": f"sum({q.sel(CLUSTER_RESOURCES)})",
        "objects_bad": f"sum({q.sel(CLUSTER_RESOURCES, status=BAD)}) or vector(0)",
        "objects_by_status": f"sum by (status) ({q.sel(CLUSTER_RESOURCES)})",
        "cluster_health": (
            f"sort_desc(topk({s.top}, sum {by_cluster} ({q.sel(CLUSTER_RESOURCES, status=BAD)})"
            f" + {q.on('cluster')} (1000 * (1 - max {by_cluster} ({q.sel(CLUSTER_REACHABLE)})))))"
        ),
        "cluster_reachable": f"sum {by_cluster} ({q.sel(CLUSTER_REACHABLE)})",
        "cluster_synced": f"sum {by_cluster} ({q.sel(CLUSTER_SYNCED)})",
        "cluster_bad": f"sum {by_cluster} ({q.sel(CLUSTER_RESOURCES, status=BAD)})",
        "cluster_total": f"sum {by_cluster} ({q.sel(CLUSTER_RESOURCES)})",
        "cluster_sync_age": f"time() - max {by_cluster} ({q.sel(CLUSTER_LAST_FULL_SYNC)})",
        "top_failing": f"topk({s.top}, {age_of(BAD, ROOT_LABELS)})",
        "problems_by_root": (
            f"sort_desc(count {q.by('cluster', *ROOT_LABELS[2:])}"
            f" ({q.sel(RESOURCE_STATUS, status=NOT_READY)}))"
        ),
        "stale": (
            f"(time() - {q.sel(RESOURCE_LAST_ATTEMPT, kind=eq('Kustomization'))}"
            f" > {factor} * {q.sel(RESOURCE_INTERVAL, kind=eq('Kustomization'))})"
            f" or ((time() - {q.sel(RESOURCE_LAST_SUCCESS)}"
            f" > {factor} * {q.sel(RESOURCE_INTERVAL)})"
            f" and {on} {q.sel(RESOURCE_STATUS, status=NOT_READY)})"
        ),
        "drifting": (
            f"time() - ({q.sel(RESOURCE_DRIFT_SINCE)} * {on} group_left(applied_revision, "
            f"wanted_revision) ({q.sel(RESOURCE_DRIFT)} == 1))"
        ),
        "suspended": (
            f"time() - ({since} * {on} group_left(reason) "
            f"{q.sel(RESOURCE_STATUS, status=eq('suspended'))})"
        ),
    }
    out["stale_count"] = f"count({out['stale']}) or vector(0)"
    out["drifting_count"] = f"count({q.sel(RESOURCE_DRIFT)} == 1) or vector(0)"
    out["suspended_count"] = f"sum({q.sel(CLUSTER_RESOURCES, status=eq('suspended'))}) or vector(0)"
    for quantile in QUANTILES:
        out[f"latency_p{quantile * 100:g}"] = (
            f"histogram_quantile({quantile:g}, sum by (le) "
            f"(rate({q.sel(APPLY_LATENCY, '_bucket')}[{s.latency_window}])))"
        )
    if s.recording_rules and fleet_wide:
        out.update(recorded(ctx))
    return out


def recorded(ctx: Context) -> dict[str, str]:
    """The fleet-wide aggregates read from recording rules (docs/alerts.md): at 500 clusters
    the raw ``flux_cluster_resources`` alone is 42,000 series per evaluation step. The rules
    keep kind, status and cluster, not namespace or tenant."""
    q = ctx.q
    kind_status = record(q, ("kind", "status"), CLUSTER_RESOURCES, "sum")
    by_kind = rule(q, kind_status, kind="$kind")
    bad_by_kind = rule(q, kind_status, kind="$kind", status="failing|stalled")
    failing = rule(
        q, record(q, ("cluster",), CLUSTER_RESOURCES, "sum", "_failing"), cluster="$cluster"
    )
    roots = rule(
        q,
        record(q, ("cluster", "root"), RESOURCE_STATUS, "count", "_not_ready"),
        cluster="$cluster",
    )
    latency = rule(q, record(q, ("kind", "le"), APPLY_LATENCY, "rate1h", "_bucket"), kind="$kind")
    # max: two exporter replicas (HA) both report a cluster; the + must stay one-to-one.
    reachable = f"max {q.by('cluster')} ({q.sel(CLUSTER_REACHABLE)})"
    out = {
        "clusters_total": record(q, (), CLUSTER_REACHABLE, "count"),
        "clusters_reachable": record(q, (), CLUSTER_REACHABLE, "sum"),
        "objects_total": f"sum({by_kind})",
        "objects_bad": f"sum({bad_by_kind}) or vector(0)",
        "objects_by_status": f"sum by (status) ({by_kind})",
        "cluster_bad": failing,
        "cluster_health": (
            f"sort_desc(topk({ctx.settings.top}, {failing}"
            f" + {q.on('cluster')} (1000 * (1 - {reachable}))))"
        ),
        "problems_by_root": f"sort_desc({roots})",
    }
    for quantile in QUANTILES:
        out[f"latency_p{quantile * 100:g}"] = (
            f"histogram_quantile({quantile:g}, sum by (le) ({latency}))"
        )
    return out


def overview_panels(ctx: Context, grid: Grid, queries_: dict[str, str], fleet: bool) -> None:
    """The headline numbers, statuses and problem tables (shared with the Cluster dashboard)."""
    Q = queries_
    c = ctx.q.label("cluster")
    if fleet:
        grid.add(
            stat("Clusters", [target(Q["clusters_total"], "A")], "Clusters the exporter watches."),
            3,
            4,
        )
        grid.add(
            stat(
                "Reachable",
                [target(Q["clusters_reachable"], "A")],
                "Clusters whose API server answers.",
            ),
            3,
            4,
        )
        grid.add(
            stat(
                "Synced",
                [target(Q["clusters_synced"], "A")],
                "Clusters whose first full list finished.",
            ),
            3,
            4,
        )
    grid.add(stat("Flux objects", [target(Q["objects_total"], "A")], "Flux objects watched."), 3, 4)
    grid.add(
        stat(
            "Failing or stalled",
            [target(Q["objects_bad"], "A")],
            "Objects whose status is failing or stalled.",
            steps=(("green", None), ("red", 1)),
        ),
        3,
        4,
    )
    grid.add(
        stat(
            "Stale",
            [target(Q["stale_count"], "A")],
            f"Objects with no run for {ctx.settings.stale_factor:g} intervals (Kustomizations), "
            "or not ready with no success for that long.",
            steps=(("green", None), ("orange", 1)),
        ),
        3,
        4,
    )
    grid.add(
        stat(
            "Drifting",
            [target(Q["drifting_count"], "A")],
            "Kustomizations and HelmReleases with a revision offered but not applied.",
            steps=(("green", None), ("orange", 1)),
        ),
        3,
        4,
    )
    grid.add(
        stat(
            "Suspended",
            [target(Q["suspended_count"], "A")],
            "Objects with spec.suspend: true.",
            steps=(("green", None), ("blue", 1)),
        ),
        3 if fleet else 12,
        4,
    )
    grid.newline()
    grid.add(
        timeseries(
            "Objects by status",
            [target(Q["objects_by_status"], "A", "{{status}}")],
            "Flux objects by derived status over time.",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Commit-to-applied latency",
            [
                target(Q[f"latency_p{x * 100:g}"], f"Q{i}", f"p{x * 100:g}")
                for i, x in enumerate(QUANTILES)
            ],
            f"From a revision appearing on a source to a Kustomization or HelmRelease applying it, "
            f"quantiles over {ctx.settings.latency_window}.",
            unit="s",
        ),
        12,
        8,
    )
    grid.row("Problems")
    grid.add(
        age_table(
            ctx,
            "Top failing objects",
            Q["top_failing"],
            "Failing or stalled objects, oldest first, with the reason and the root cause up the "
            "source/dependsOn chain.",
            labels=ROOT_LABELS,
            header="for",
        ),
        24,
        10,
    )
    grid.add(
        table(
            "Problems grouped by root cause",
            [target(Q["problems_by_root"], "A", instant=True)],
            "One broken source blocks N dependents: objects not ready, counted per root cause.",
            columns=[c, "root_kind", "root_namespace", "root_name", "root_reason", "Value"],
            rename={"Value": "objects"},
            sort=("objects", True),
        ),
        12,
        8,
    )
    grid.add(
        age_table(
            ctx,
            "Stale objects",
            Q["stale"],
            "Kustomizations with no run for the stale factor times their interval, and objects "
            "not ready with no success for as long (other kinds write no status on quiet runs).",
            header="since last run",
        ),
        12,
        8,
    )
    grid.add(
        age_table(
            ctx,
            "Revision drift",
            Q["drifting"],
            "Kustomizations and HelmReleases whose source offers (or which attempt) a revision "
            "not applied yet, and for how long.",
            labels=("applied_revision", "wanted_revision"),
            header="drifting for",
        ),
        12,
        8,
    )
    grid.add(
        age_table(
            ctx,
            "Suspended objects",
            Q["suspended"],
            "Objects with spec.suspend: true, and for how long.",
            labels=("reason",),
            header="suspended for",
        ),
        12,
        8,
    )


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    c = ctx.q.label("cluster")
    grid = Grid()
    overview_panels(ctx, grid, Q, fleet=True)
    grid.row("Clusters")
    grid.add(
        state_timeline(
            "Cluster health, worst first",
            [target(Q["cluster_health"], "A", f"{{{{{c}}}}}")],
            f"Failing and stalled objects per cluster (an unreachable cluster counts 1000), the "
            f"{ctx.settings.top} worst clusters.",
        ),
        12,
        12,
    )
    grid.add(
        table(
            "Clusters",
            [
                target(Q["cluster_reachable"], "A", instant=True),
                target(Q["cluster_synced"], "B", instant=True),
                target(Q["cluster_bad"], "C", instant=True),
                target(Q["cluster_total"], "D", instant=True),
                target(Q["cluster_sync_age"], "E", instant=True),
            ],
            "Every cluster: reachable, synced, failing or stalled objects, objects, and the age "
            "of the last full list. Click a cluster for its dashboard.",
            columns=[c, "Value #A", "Value #B", "Value #C", "Value #D", "Value #E"],
            rename={
                "Value #A": "reachable",
                "Value #B": "synced",
                "Value #C": "failing or stalled",
                "Value #D": "objects",
                "Value #E": "last full sync",
            },
            units={"last full sync": "s"},
            links={c: drilldown(ctx, "cluster", cluster=c)},
            sort=("failing or stalled", True),
        ),
        12,
        12,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "What is failing across the fleet, where, since when and why.",
        grid,
    )
