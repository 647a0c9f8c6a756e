"""Delivery (DORA-style), per team and fleet-wide, from what the exporter observes:
deployment frequency, lead time, change failure rate and time to restore."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import APPLY_LATENCY, REVISIONS_APPLIED, TIME_TO_RECOVER, TRANSITIONS
from dashboards.common import Context, Grid, dashboard, stat, table, target, timeseries
from dashboards.promql import BAD
from dashboards.recording import record, rule

NAME = "delivery"
TITLE = "Flux delivery"


def queries(ctx: Context) -> dict[str, str]:
    q = ctx.q
    w = ctx.settings.delivery_window
    applied = q.sel(REVISIONS_APPLIED)
    # A change that breaks: an object entering failing or stalled from a good state (so a
    # failing object stalling later is one failure, not two).
    broke = q.sel(TRANSITIONS, to=BAD, **{"from": '!~"failing|stalled"'})
    latency = q.sel(APPLY_LATENCY, "_bucket")
    restore = q.sel(TIME_TO_RECOVER, "_bucket")

    def quantile(x: float, histogram: str, by: str = "") -> str:
        return f"histogram_quantile({x:g}, sum by ({by}le) (rate({histogram}[{w}])))"

    out = {
        "deploys_per_day": f"sum(increase({applied}[{w}])) / {_days(w):g}",
        "lead_time_p50": quantile(0.5, latency),
        "change_failure_rate": (
            f"clamp_max(sum(increase({broke}[{w}])) / sum(increase({applied}[{w}])), 1)"
        ),
        "time_to_restore_p50": quantile(0.5, restore),
        "deploys_by_tenant": f"sum by (tenant) (increase({applied}[{w}]))",
        "lead_time_by_tenant": quantile(0.5, latency, "tenant, "),
        "failures_by_tenant": f"sum by (tenant) (increase({broke}[{w}]))",
        "restore_by_tenant": quantile(0.5, restore, "tenant, "),
        "deploys_over_time": f"sum by (tenant) (increase({applied}[$__rate_interval]))",
        "restored_over_time": (
            f"sum by (tenant) (increase({q.sel(TIME_TO_RECOVER, '_count')}[$__rate_interval]))"
        ),
    }
    if ctx.settings.recording_rules:
        out.update(recorded(ctx))
    return out


def recorded(ctx: Context) -> dict[str, str]:
    """A week of raw histogram buckets is tens of thousands of series times 40,000 samples at
    fleet scale (past Prometheus's default query.max-samples); the recorded per-tenant rates,
    averaged over the window, give the same figures from a few hundred series. Failures per
    tenant stay raw: the recorded transition rate has no tenant."""
    q = ctx.q
    w = ctx.settings.delivery_window
    tenant = "$tenant"
    deploys = rule(q, record(q, ("tenant", "kind"), REVISIONS_APPLIED, "rate1h"), tenant=tenant)
    latency = rule(
        q, record(q, ("tenant", "le"), APPLY_LATENCY, "rate1h", "_bucket"), tenant=tenant
    )
    restore = rule(
        q, record(q, ("tenant", "le"), TIME_TO_RECOVER, "rate1d", "_bucket"), tenant=tenant
    )
    broke = rule(q, record(q, ("kind", "to"), TRANSITIONS, "rate5m"), to="failing|stalled")

    def avg(series: str) -> str:
        return f"avg_over_time({series}[{w}])"

    def quantile(x: float, series: str, by: str = "") -> str:
        return f"histogram_quantile({x:g}, sum by ({by}le) ({avg(series)}))"

    return {
        "deploys_per_day": f"sum({avg(deploys)}) * 86400",
        "lead_time_p50": quantile(0.5, latency),
        "change_failure_rate": f"clamp_max(sum({avg(broke)}) / sum({avg(deploys)}), 1)",
        "time_to_restore_p50": quantile(0.5, restore),
        "deploys_by_tenant": f"sum by (tenant) ({avg(deploys)}) * {_days(w) * 86400:g}",
        "lead_time_by_tenant": quantile(0.5, latency, "tenant, "),
        "restore_by_tenant": quantile(0.5, restore, "tenant, "),
    }


def _days(window: str) -> float:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[window[-1]] * int(window[:-1])
    return seconds / 86400


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    w = ctx.settings.delivery_window
    grid = Grid()
    grid.add(
        stat(
            "Deployments per day",
            [target(Q["deploys_per_day"], "A")],
            f"Revisions applied by Kustomizations and HelmReleases per day, over {w}.",
        ),
        6,
        5,
    )
    grid.add(
        stat(
            "Lead time (median)",
            [target(Q["lead_time_p50"], "A")],
            f"Commit to applied: from a revision appearing on its source to it being applied, "
            f"over {w}.",
            unit="s",
        ),
        6,
        5,
    )
    grid.add(
        stat(
            "Change failure rate",
            [target(Q["change_failure_rate"], "A")],
            f"Objects becoming failing or stalled per revision applied, over {w}.",
            unit="percentunit",
            steps=(("green", None), ("orange", 0.15), ("red", 0.3)),
        ),
        6,
        5,
    )
    grid.add(
        stat(
            "Time to restore (median)",
            [target(Q["time_to_restore_p50"], "A")],
            f"From failing or stalled to ready again, over {w}.",
            unit="s",
        ),
        6,
        5,
    )
    grid.add(
        table(
            "Per team",
            [
                target(Q["deploys_by_tenant"], "A", instant=True),
                target(Q["lead_time_by_tenant"], "B", instant=True),
                target(Q["failures_by_tenant"], "C", instant=True),
                target(Q["restore_by_tenant"], "D", instant=True),
            ],
            f"The four figures per tenant over {w} (objects without a tenant label form one row).",
            columns=["tenant", "Value #A", "Value #B", "Value #C", "Value #D"],
            rename={
                "Value #A": "deployments",
                "Value #B": "lead time p50",
                "Value #C": "failures",
                "Value #D": "time to restore p50",
            },
            units={"lead time p50": "s", "time to restore p50": "s"},
            sort=("deployments", True),
        ),
        24,
        8,
    )
    grid.add(
        timeseries(
            "Deployments",
            [target(Q["deploys_over_time"], "A", "{{tenant}}")],
            "Revisions applied per interval, by tenant.",
            bars=True,
        ),
        12,
        8,
    )
    grid.add(
        timeseries(
            "Restored",
            [target(Q["restored_over_time"], "A", "{{tenant}}")],
            "Objects back to ready after failing, per interval, by tenant.",
            bars=True,
        ),
        12,
        8,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "DORA-style delivery figures per team and fleet-wide, from what Flux applied.",
        grid,
    )
