"""Rollouts: per source revision, how many clusters applied it over time, how long it took,
and which clusters lag behind."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import (
    APPLY_LATENCY,
    RESOURCE_DRIFT,
    RESOURCE_DRIFT_SINCE,
    REVISIONS_APPLIED,
    ROLLOUT_CLUSTERS,
    ROLLOUT_STATES,
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
from dashboards.promql import eq, regex

NAME = "rollouts"
TITLE = "Flux rollouts"


def queries(ctx: Context) -> dict[str, str]:
    """Rollout state comes from ``flux_rollout_clusters``, an aggregate every exporter serves
    whatever its ``--per-object`` mode (summed over exporter shards); which clusters lag comes
    from the per-object drift series."""
    q = ctx.q
    s = ctx.settings
    mine = {"name": regex("$object")}
    rollout = q.sel(ROLLOUT_CLUSTERS, **mine)
    identity = "kind, namespace, name, revision"
    out = {
        "progress": f"sum by (revision, state) ({rollout})",
        "lagging": (
            f"time() - ({q.sel(RESOURCE_DRIFT_SINCE, **mine)} * {q.identity} "
            f"group_left(applied_revision, wanted_revision) ({q.sel(RESOURCE_DRIFT, **mine)} == 1))"
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
    for state in ROLLOUT_STATES:
        out[f"now_{state}"] = (
            f"sum by ({identity}) ({q.sel(ROLLOUT_CLUSTERS, state=eq(state), **mine)})"
        )
    return out


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    grid = Grid()
    grid.add(
        timeseries(
            "Clusters per revision and state of $object",
            [target(Q["progress"], "A", "{{revision}} {{state}}")],
            "Clusters running the chosen Kustomizations or HelmReleases, by the revision each is "
            "rolling out to and its state there: a rollout is 'applied' rising while 'pending' "
            "falls; 'failing' is where it broke.",
            stacked=True,
        ),
        14,
        9,
    )
    grid.add(
        table(
            "Rollouts now",
            [
                target(Q[f"now_{state}"], chr(ord("A") + i), instant=True)
                for i, state in enumerate(ROLLOUT_STATES)
            ],
            "Per object and revision: clusters applied, still pending, failing.",
            columns=["kind", "namespace", "name", "revision", "Value #A", "Value #B", "Value #C"],
            rename={"Value #A": "applied", "Value #B": "pending", "Value #C": "failing"},
            links={"name": drilldown(ctx, "rollouts", object="name", namespace="namespace")},
            sort=("pending", True),
        ),
        10,
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
            "Where $object has not applied the revision its source offers (or it attempts), "
            "and for how long.",
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
    objects = ctx.q.sel(ROLLOUT_CLUSTERS, variables=("namespace", "kind"))
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "How a revision spreads over the fleet, object by object, and which clusters lag behind.",
        grid,
        extra_variables=[template(ctx, "object", objects, "name")],
    )
