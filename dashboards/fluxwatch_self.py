"""fluxwatch itself: is the exporter watching every cluster, and is its scrape healthy."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import (
    CLUSTER_LAST_FULL_SYNC,
    CLUSTER_REACHABLE,
    CLUSTER_SYNCED,
    SELF_MALFORMED,
    SELF_OBJECTS,
    SELF_SCRAPE_DURATION,
    SELF_TRANSITIONS_DROPPED,
    SELF_TRANSITIONS_PUBLISHED,
)
from catalogue.prometheus import SCRAPE_DURATION, SCRAPE_SAMPLES, UP
from dashboards.common import (
    Context,
    Grid,
    dashboard,
    stat,
    state_timeline,
    table,
    target,
    timeseries,
)

NAME = "fluxwatch"
TITLE = "fluxwatch itself"


def queries(ctx: Context) -> dict[str, str]:
    q = ctx.q
    rate = "[$__rate_interval]"
    scrape = q.sel(SELF_SCRAPE_DURATION, "_bucket")
    # Prometheus's own per-target series: the exporter's job, found through a series it serves.
    job = f"and on (job, instance) {q.sel(SELF_OBJECTS)}"
    return {
        "up": f"min(({q.sel(UP)} {job})) or vector(0)",
        "objects": f"sum({q.sel(SELF_OBJECTS)})",
        "unreachable": f"count({q.sel(CLUSTER_REACHABLE)} == 0) or vector(0)",
        "not_synced": f"count({q.sel(CLUSTER_SYNCED)} == 0) or vector(0)",
        "reachable_by_cluster": f"sort(max {q.by('cluster')} ({q.sel(CLUSTER_REACHABLE)}))",
        "sync_age": f"time() - max {q.by('cluster')} ({q.sel(CLUSTER_LAST_FULL_SYNC)})",
        "build_p50": f"histogram_quantile(0.5, sum by (le) (rate({scrape}{rate})))",
        "build_p99": f"histogram_quantile(0.99, sum by (le) (rate({scrape}{rate})))",
        "scrape_duration": f"{q.sel(SCRAPE_DURATION)} {job}",
        "scrape_samples": f"{q.sel(SCRAPE_SAMPLES)} {job}",
        "malformed": (
            f"sum {q.by('cluster', 'kind', 'reason')} (increase({q.sel(SELF_MALFORMED)}{rate}))"
        ),
        "published": f"sum(rate({q.sel(SELF_TRANSITIONS_PUBLISHED)}{rate}))",
        "dropped": f"sum by (reason) (rate({q.sel(SELF_TRANSITIONS_DROPPED)}{rate}))",
    }


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    c = ctx.q.label("cluster")
    grid = Grid()
    red_if_zero = (("red", None), ("green", 1))
    grid.add(
        stat(
            "Exporter up",
            [target(Q["up"], "A")],
            "Prometheus's last scrape succeeded.",
            steps=red_if_zero,
        ),
        6,
        4,
    )
    grid.add(stat("Objects held", [target(Q["objects"], "A")], "Flux objects in the store."), 6, 4)
    grid.add(
        stat(
            "Clusters unreachable",
            [target(Q["unreachable"], "A")],
            "Clusters whose API server does not answer.",
            steps=(("green", None), ("red", 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Clusters not synced",
            [target(Q["not_synced"], "A")],
            "Clusters still waiting for their first full list.",
            steps=(("green", None), ("orange", 1)),
        ),
        6,
        4,
    )
    grid.add(
        state_timeline(
            "Cluster reachability",
            [target(Q["reachable_by_cluster"], "A", f"{{{{{c}}}}}")],
            "1 reachable, 0 not; unreachable clusters first.",
        ),
        12,
        10,
    )
    grid.add(
        table(
            "Last full sync",
            [target(Q["sync_age"], "A", instant=True)],
            "Time since the last complete list of every kind, per cluster.",
            columns=[c, "Value"],
            rename={"Value": "age"},
            units={"age": "s"},
            sort=("age", True),
        ),
        12,
        10,
    )
    grid.row("Scrape")
    grid.add(
        timeseries(
            "Body build time",
            [target(Q["build_p50"], "A", "p50"), target(Q["build_p99"], "B", "p99")],
            "Time the exporter takes to build /metrics (before gzip).",
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Scrape duration (Prometheus)",
            [target(Q["scrape_duration"], "A", "{{instance}}")],
            "How long Prometheus's scrape of the exporter took.",
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Samples per scrape",
            [target(Q["scrape_samples"], "A", "{{instance}}")],
            "Series the exporter serves: follows fleet size and --per-object.",
        ),
        8,
        8,
    )
    grid.row("Objects and transitions")
    grid.add(
        timeseries(
            "Malformed objects",
            [target(Q["malformed"], "A", f"{{{{{c}}}}} {{{{kind}}}} {{{{reason}}}}")],
            "Surprising fields in watched objects, by cluster, kind and reason.",
            bars=True,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Transitions to the bridge",
            [
                target(Q["published"], "A", "published"),
                target(Q["dropped"], "B", "dropped {{reason}}"),
            ],
            "Transitions handed to the notification bridge, and those dropped.",
            unit="ops",
        ),
        12,
        8,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "The exporter's own health: clusters watched, sync, scrape size and time, transitions.",
        grid,
    )
