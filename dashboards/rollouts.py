"""Rollouts: per source revision, how many clusters applied it over time, how long it took,
and which clusters lag behind."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import (
    APPLIER_KINDS,
    APPLY_LATENCY,
    RESOURCE_DRIFT,
    RESOURCE_DRIFT_SINCE,
    RESOURCE_INFO,
    REVISIONS_APPLIED,
)
from dashboards.common import (
    Context,
    Grid,
    age_table,
    dashboard,
    drilldown,
    heatmap,
    table,
    target,
    template,
    timeseries,
)
from dashboards.promql import regex

NAME = "rollouts"
TITLE = "Flux rollouts"
APPLIERS = regex("|".join(APPLIER_KINDS))
SOURCE = ("source_kind", "source_namespace", "source_name")


def queries(ctx: Context) -> dict[str, str]:
    q = ctx.q
    s = ctx.settings
    appliers = q.sel(RESOURCE_INFO, kind=APPLIERS, source_name=regex("$source"))
    per_cluster = f"count {q.by('cluster', *SOURCE, 'applied_revision')} ({appliers})"
    return {
        "clusters_per_revision": f"count by (applied_revision) ({per_cluster})",
        "revisions_now": (f"sort_desc(count {q.by(*SOURCE, 'applied_revision')} ({per_cluster}))"),
        "lagging": (
            f"time() - ({q.sel(RESOURCE_DRIFT_SINCE)} * {q.identity} group_left(applied_revision, "
            f"wanted_revision) ({q.sel(RESOURCE_DRIFT)} == 1)) and {q.identity} {appliers}"
        ),
        "latency_buckets": (
            f"sum by (le) (increase({q.sel(APPLY_LATENCY, '_bucket')}[$__rate_interval]))"
        ),
        "latency_p50": (
            f"histogram_quantile(0.5, sum by (le) "
            f"(rate({q.sel(APPLY_LATENCY, '_bucket')}[{s.latency_window}])))"
        ),
        "latency_p90": (
            f"histogram_quantile(0.9, sum by (le) "
            f"(rate({q.sel(APPLY_LATENCY, '_bucket')}[{s.latency_window}])))"
        ),
        "applied": f"sum by (kind) (increase({q.sel(REVISIONS_APPLIED)}[$__rate_interval]))",
    }


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    grid = Grid()
    grid.add(
        timeseries(
            "Clusters with each revision of $source",
            [target(Q["clusters_per_revision"], "A", "{{applied_revision}}")],
            "Clusters whose Kustomizations or HelmReleases following the source have applied "
            "each revision: a rollout is one line rising while the previous one falls.",
        ),
        16,
        9,
    )
    grid.add(
        table(
            "Revisions now",
            [target(Q["revisions_now"], "A", instant=True)],
            "Clusters per applied revision of each source now.",
            columns=[*SOURCE, "applied_revision", "Value"],
            rename={"Value": "clusters"},
            links={"source_name": drilldown(ctx, "sources", source="source_name")},
            sort=("clusters", True),
        ),
        8,
        9,
    )
    grid.add(
        heatmap(
            "Commit-to-applied latency",
            [target(Q["latency_buckets"], "A", "{{le}}")],
            "How long revisions took from the source to being applied, per bucket over time.",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Latency quantiles",
            [target(Q["latency_p50"], "A", "p50"), target(Q["latency_p90"], "B", "p90")],
            f"Commit to applied over {ctx.settings.latency_window}.",
            unit="s",
        ),
        12,
        8,
    )
    grid.add(
        age_table(
            ctx,
            "Clusters lagging behind",
            Q["lagging"],
            "Kustomizations and HelmReleases following $source that have not applied the "
            "revision their source offers, and for how long.",
            labels=("applied_revision", "wanted_revision"),
            header="lagging for",
        ),
        16,
        9,
    )
    grid.add(
        timeseries(
            "Revisions applied",
            [target(Q["applied"], "A", "{{kind}}")],
            "New revisions applied per interval, by kind.",
            bars=True,
        ),
        8,
        9,
    )
    appliers = ctx.q.sel(RESOURCE_INFO, variables=("cluster",), kind=APPLIERS)
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "How a source revision spreads over the fleet, and which clusters lag behind.",
        grid,
        extra_variables=[template(ctx, "source", appliers, "source_name")],
    )
