"""Team / tenant: the objects one application team owns (tenant label or namespace)."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import (
    APPLY_LATENCY,
    RESOURCE_DRIFT,
    RESOURCE_INFO,
    RESOURCE_STATUS,
    RESOURCE_STATUS_SINCE,
    REVISIONS_APPLIED,
    TRANSITIONS,
)
from dashboards.common import (
    Context,
    Grid,
    age_table,
    dashboard,
    stat,
    target,
    timeseries,
)
from dashboards.fleet import ROOT_LABELS
from dashboards.promql import BAD

NAME = "tenant"
TITLE = "Flux team / tenant"


def queries(ctx: Context) -> dict[str, str]:
    """Per-object families carry no tenant label: they are joined with flux_resource_info."""
    q = ctx.q
    s = ctx.settings
    owned = f"and {q.identity} {q.sel(RESOURCE_INFO)}"
    bad = f"({q.sel(RESOURCE_STATUS, status=BAD)} {owned})"
    return {
        "objects": f"count({q.sel(RESOURCE_STATUS)} {owned}) or vector(0)",
        "objects_bad": f"count({bad}) or vector(0)",
        "objects_by_status": f"count by (status) ({q.sel(RESOURCE_STATUS)} {owned})",
        "failing": (
            f"time() - ({q.sel(RESOURCE_STATUS_SINCE)} * {q.identity} "
            f"group_left({', '.join(ROOT_LABELS)}) {bad})"
        ),
        "drifting": f"count(({q.sel(RESOURCE_DRIFT)} == 1) {owned}) or vector(0)",
        "deploys": (f"sum by (tenant) (increase({q.sel(REVISIONS_APPLIED)}[$__rate_interval]))"),
        "failures": (f"sum by (tenant) (increase({q.sel(TRANSITIONS, to=BAD)}[$__rate_interval]))"),
        "lead_time_p90": (
            f"histogram_quantile(0.9, sum by (tenant, le) "
            f"(rate({q.sel(APPLY_LATENCY, '_bucket')}[{s.latency_window}])))"
        ),
    }


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    grid = Grid()
    grid.add(stat("Objects", [target(Q["objects"], "A")], "The team's Flux objects."), 6, 4)
    grid.add(
        stat(
            "Failing or stalled",
            [target(Q["objects_bad"], "A")],
            "The team's objects that are failing or stalled.",
            steps=(("green", None), ("red", 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Drifting",
            [target(Q["drifting"], "A")],
            "The team's Kustomizations and HelmReleases with a revision not applied yet.",
            steps=(("green", None), ("orange", 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Lead time p90",
            [target(Q["lead_time_p90"], "A", "{{tenant}}")],
            f"Commit to applied, 90th percentile over {ctx.settings.latency_window}.",
            unit="s",
        ),
        6,
        4,
    )
    grid.add(
        age_table(
            ctx,
            "Failing objects",
            Q["failing"],
            "The team's failing or stalled objects, oldest first, with reason and root cause.",
            labels=ROOT_LABELS,
            header="for",
        ),
        24,
        10,
    )
    grid.add(
        timeseries(
            "Objects by status",
            [target(Q["objects_by_status"], "A", "{{status}}")],
            "The team's objects by status over time.",
            stacked=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Revisions applied",
            [target(Q["deploys"], "A", "{{tenant}}")],
            "New revisions applied by the team's Kustomizations and HelmReleases.",
            bars=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Became failing or stalled",
            [target(Q["failures"], "A", "{{tenant}}")],
            "Status changes into failing or stalled.",
            bars=True,
        ),
        8,
        8,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "For application teams: their objects by tenant label or namespace, what fails and why.",
        grid,
    )
