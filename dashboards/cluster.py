"""Cluster: the fleet overview's questions for one cluster, and every Flux object in it."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import RESOURCE_INFO, RESOURCE_LAST_SUCCESS, RESOURCE_STATUS
from dashboards import fleet
from dashboards.common import Context, Grid, dashboard, drilldown, table, target

NAME = "cluster"
TITLE = "Flux cluster"
INFO_LABELS = ("applied_revision", "source_kind", "source_namespace", "source_name", "tenant")


def queries(ctx: Context) -> dict[str, str]:
    """The fleet overview's per-cluster queries plus the object inventory."""
    q = ctx.q
    out = {
        k: v
        for k, v in fleet.queries(ctx, fleet_wide=False).items()
        if not k.startswith("clusters_")
    }
    out["objects"] = (
        f"{q.sel(RESOURCE_STATUS)} * {q.identity} group_left({', '.join(INFO_LABELS)}) "
        f"{q.sel(RESOURCE_INFO)}"
    )
    out["objects_last_success"] = f"time() - {q.sel(RESOURCE_LAST_SUCCESS)}"
    return out


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    c = ctx.q.label("cluster")
    grid = Grid()
    fleet.overview_panels(ctx, grid, Q, fleet=False)
    grid.row("Objects")
    grid.add(
        table(
            "Flux objects",
            [
                target(Q["objects"], "A", instant=True),
                target(Q["objects_last_success"], "B", instant=True),
            ],
            "Every Flux object of the cluster with its status, reason, applied revision and the "
            "time since its last success. Click a name for its rollout across the fleet.",
            columns=[
                c,
                "kind",
                "namespace",
                "name",
                "status",
                "reason",
                "applied_revision",
                "source_name",
                "tenant",
                "Value #B",
            ],
            rename={"Value #B": "since last success"},
            units={"since last success": "s"},
            links={
                c: drilldown(ctx, "fleet", cluster=c),
                "name": drilldown(ctx, "rollouts", object="name", namespace="namespace"),
            },
            sort=("status", False),
        ),
        24,
        14,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "One cluster: its failing objects, root causes, staleness, drift and every Flux object.",
        grid,
        single_cluster=True,
    )
