"""fluxwatch itself: is the exporter watching every cluster, and is its scrape healthy."""

from __future__ import annotations

from typing import Any

from catalogue import bridge
from catalogue.exporter import (
    API_ERRORS,
    CLUSTER_AUTH_FAILED,
    CLUSTER_LAST_FULL_SYNC,
    CLUSTER_REACHABLE,
    CLUSTER_SYNCED,
    DECODE_ERRORS,
    RELISTS,
    SELF_MALFORMED,
    SELF_OBJECTS,
    SELF_SCRAPE_DURATION,
    SELF_TRANSITIONS_DROPPED,
    SELF_TRANSITIONS_PUBLISHED,
    WATCH_EVENTS,
    WATCH_RESTARTS,
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
        "auth_failed": f"count({q.sel(CLUSTER_AUTH_FAILED)} == 1) or vector(0)",
        "watch_restarts": (
            f"sum {q.by('cluster', 'reason')} (increase({q.sel(WATCH_RESTARTS)}{rate}))"
        ),
        "relists": f"sum {q.by('cluster')} (increase({q.sel(RELISTS)}{rate}))",
        "api_errors": f"sum {q.by('cluster', 'code')} (increase({q.sel(API_ERRORS)}{rate}))",
        "decode_errors": f"sum {q.by('cluster')} (increase({q.sel(DECODE_ERRORS)}{rate}))",
        "watch_events": f"sum(rate({q.sel(WATCH_EVENTS)}{rate}))",
        "bridge_received": (f"sum by (source) (rate({q.sel(bridge.EVENTS_RECEIVED)}{rate}))"),
        "bridge_rejected": (
            f"sum by (source, reason) (rate({q.sel(bridge.EVENTS_REJECTED)}{rate}))"
        ),
        "bridge_deliveries": (
            f"sum by (destination, outcome) (rate({q.sel(bridge.DELIVERIES)}{rate}))"
        ),
        # Replicas of a bridge on PostgreSQL each report the whole shared outbox: max, not sum.
        "bridge_queue": f"max by (destination) ({q.sel(bridge.QUEUE_DEPTH)})",
        "bridge_oldest": f"max by (destination) ({q.sel(bridge.OLDEST_PENDING_AGE)})",
        "bridge_dead": f"sum(max by (destination) ({q.sel(bridge.DEAD_LETTERS)})) or vector(0)",
        "bridge_circuits_open": (
            f"sum(max by (destination) ({q.sel(bridge.CIRCUIT_OPEN)})) or vector(0)"
        ),
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
    grid.row("Watches")
    grid.add(
        stat(
            "Credentials rejected",
            [target(Q["auth_failed"], "A")],
            "Clusters whose API server answers 401 or 403 to the exporter.",
            steps=(("green", None), ("red", 1)),
        ),
        4,
        8,
    )
    grid.add(
        timeseries(
            "Watch events",
            [target(Q["watch_events"], "A", "events")],
            "Watch events processed per second, fleet-wide.",
            unit="ops",
        ),
        10,
        8,
    )
    grid.add(
        timeseries(
            "Watch restarts",
            [target(Q["watch_restarts"], "A", f"{{{{{c}}}}} {{{{reason}}}}")],
            "Watch streams reopened, by cluster and reason (timeout is routine).",
            bars=True,
        ),
        10,
        8,
    )
    grid.add(
        timeseries(
            "API errors",
            [target(Q["api_errors"], "A", f"{{{{{c}}}}} {{{{code}}}}")],
            "Failed API requests per cluster by HTTP status ('connection': no answer).",
            bars=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Relists",
            [target(Q["relists"], "A", f"{{{{{c}}}}}")],
            "Full lists after the first one (410 Gone, reconnects).",
            bars=True,
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Decode errors",
            [target(Q["decode_errors"], "A", f"{{{{{c}}}}}")],
            "Watch lines or list items that were not valid objects.",
            bars=True,
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
    grid.row("Notification bridge")
    grid.add(
        stat(
            "Dead letters",
            [target(Q["bridge_dead"], "A")],
            "Notifications given up on (replay with fluxwatch outbox replay).",
            steps=(("green", None), ("red", 1)),
        ),
        4,
        8,
    )
    grid.add(
        stat(
            "Circuits open",
            [target(Q["bridge_circuits_open"], "A")],
            "Destinations whose circuit breaker is open.",
            steps=(("green", None), ("orange", 1)),
        ),
        4,
        8,
    )
    grid.add(
        timeseries(
            "Intake",
            [
                target(Q["bridge_received"], "A", "received {{source}}"),
                target(Q["bridge_rejected"], "B", "rejected {{source}} {{reason}}"),
            ],
            "Events accepted (durably stored) and rejected, per second.",
            unit="ops",
        ),
        16,
        8,
    )
    grid.add(
        timeseries(
            "Deliveries",
            [target(Q["bridge_deliveries"], "A", "{{destination}} {{outcome}}")],
            "Delivery attempts by destination and outcome.",
            unit="ops",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Queue depth",
            [target(Q["bridge_queue"], "A", "{{destination}}")],
            "Deliveries waiting per destination.",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Oldest pending delivery",
            [target(Q["bridge_oldest"], "A", "{{destination}}")],
            "Age of the oldest undelivered delivery per destination.",
            unit="s",
        ),
        8,
        8,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "The exporter's and the bridge's own health: watches, scrape, transitions, deliveries.",
        grid,
    )
