"""Flux controllers: reconcile rate, errors, durations and work-queue depth from the
controllers' own controller-runtime and ``gotk_reconcile_duration_seconds`` metrics.

Sharded controllers run as ``<controller>-shard<N>`` Deployments; the pod selector matches
them as well as the main ones, and per-pod panels show each shard separately.
"""

from __future__ import annotations

from typing import Any

from grafanalib import core as g

from catalogue.controllers import (
    CONTROLLERS,
    RECONCILE_DURATION,
    RECONCILE_ERRORS,
    RECONCILE_TIME,
    RECONCILE_TOTAL,
    WORKQUEUE_DEPTH,
    WORKQUEUE_QUEUE_DURATION,
)
from catalogue.specs import MetricSpec
from dashboards.common import DATASOURCE, Context, Grid, dashboard, table, target, timeseries
from dashboards.promql import regex

NAME = "controllers"
TITLE = "Flux controllers"
POD = regex("(${controller})(-shard[0-9]+)?-[a-z0-9]+-[a-z0-9]+")
"""Pods of the chosen controllers: ``kustomize-controller-7d9f...-x2v4q`` and its shards
``kustomize-controller-shard1-...``."""


def queries(ctx: Context) -> dict[str, str]:
    q = ctx.q
    extra = ctx.settings.controller_selector

    def sel(spec: MetricSpec, suffix: str = "", **matchers: str) -> str:
        return q.sel(spec, suffix, variables=("cluster",), selector=extra, pod=POD, **matchers)

    rate = "[$__rate_interval]"
    objects = {"kind": regex("$kind"), "exported_namespace": regex("$namespace")}
    duration = sel(RECONCILE_DURATION, "_bucket", **objects)
    return {
        "reconciles": f"sum by (controller, result) (rate({sel(RECONCILE_TOTAL)}{rate}))",
        "errors": f"sum by (controller) (rate({sel(RECONCILE_ERRORS)}{rate}))",
        "per_pod": f"sum by (pod) (rate({sel(RECONCILE_TOTAL)}{rate}))",
        "duration_p99": (f"histogram_quantile(0.99, sum by (kind, le) (rate({duration}{rate})))"),
        "reconcile_time_p90": (
            f"histogram_quantile(0.9, sum by (controller, le) "
            f"(rate({sel(RECONCILE_TIME, '_bucket')}{rate})))"
        ),
        "slowest": (
            f"topk(20, sum by (kind, exported_namespace, name) "
            f"(rate({sel(RECONCILE_DURATION, '_sum', **objects)}{rate}))"
            f" / sum by (kind, exported_namespace, name) "
            f"(rate({sel(RECONCILE_DURATION, '_count', **objects)}{rate})))"
        ),
        "queue_depth": f"sum by (pod, name) ({sel(WORKQUEUE_DEPTH)})",
        "queue_wait_p90": (
            f"histogram_quantile(0.9, sum by (name, le) "
            f"(rate({sel(WORKQUEUE_QUEUE_DURATION, '_bucket')}{rate})))"
        ),
    }


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    grid = Grid()
    grid.add(
        timeseries(
            "Reconciles by controller and result",
            [target(Q["reconciles"], "A", "{{controller}} {{result}}")],
            "controller_runtime_reconcile_total per second.",
            unit="ops",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Reconcile errors",
            [target(Q["errors"], "A", "{{controller}}")],
            "Reconciliations returning an error, per second.",
            unit="ops",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Reconcile duration p99 by kind",
            [target(Q["duration_p99"], "A", "{{kind}}")],
            "gotk_reconcile_duration_seconds, 99th percentile per kind.",
            unit="s",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Reconciles per pod (shards)",
            [target(Q["per_pod"], "A", "{{pod}}")],
            "Each controller pod, shards included: an idle shard or a hot one shows here.",
            unit="ops",
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Work queue depth",
            [target(Q["queue_depth"], "A", "{{pod}} {{name}}")],
            "Objects waiting to be reconciled: a growing queue means the controller cannot "
            "keep up.",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Queue wait p90",
            [target(Q["queue_wait_p90"], "A", "{{name}}")],
            "How long objects wait in the queue before a worker takes them.",
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        timeseries(
            "Reconcile time p90 by controller",
            [target(Q["reconcile_time_p90"], "A", "{{controller}}")],
            "controller_runtime_reconcile_time_seconds, 90th percentile.",
            unit="s",
        ),
        8,
        8,
    )
    grid.add(
        table(
            "Slowest objects",
            [target(Q["slowest"], "A", instant=True)],
            "Mean reconcile duration per object over the interval, slowest first.",
            columns=["kind", "exported_namespace", "name", "Value"],
            rename={"Value": "mean duration", "exported_namespace": "namespace"},
            units={"mean duration": "s"},
            sort=("mean duration", True),
        ),
        24,
        8,
    )
    controller = g.Template(
        name="controller",
        label="controller",
        query=",".join(CONTROLLERS),
        type="custom",
        multi=True,
        includeAll=True,
        allValue="|".join(CONTROLLERS),
        default="$__all",
        dataSource=DATASOURCE,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "The Flux controllers' own view: reconcile rate, errors, durations, queues, per shard.",
        grid,
        extra_variables=[controller],
    )
