"""Sources: Git, OCI, Bucket and Helm sources: fetch failures, artifact age and size, and the
revision each cluster has of the same source."""

from __future__ import annotations

from typing import Any

from catalogue.exporter import (
    RESOURCE_INFO,
    RESOURCE_STATUS,
    RESOURCE_STATUS_SINCE,
    SOURCE_ARTIFACT_SIZE,
    SOURCE_ARTIFACT_UPDATED,
    SOURCE_KINDS_WITH_ARTIFACT,
)
from dashboards.common import (
    Context,
    Grid,
    age_table,
    dashboard,
    drilldown,
    stat,
    table,
    target,
    template,
    timeseries,
)
from dashboards.promql import BAD, regex

NAME = "sources"
TITLE = "Flux sources"
SOURCE_KINDS = regex("|".join(SOURCE_KINDS_WITH_ARTIFACT))


def queries(ctx: Context) -> dict[str, str]:
    q = ctx.q
    s = ctx.settings
    src = {"kind": SOURCE_KINDS}
    by_source = q.by("kind", "namespace", "name")
    info = q.sel(RESOURCE_INFO, **src)
    return {
        "failing_count": f"count({q.sel(RESOURCE_STATUS, status=BAD, **src)}) or vector(0)",
        "failing": (
            f"time() - ({q.sel(RESOURCE_STATUS_SINCE, **src)} * {q.identity} group_left(status, "
            f"reason) {q.sel(RESOURCE_STATUS, status=BAD, **src)})"
        ),
        "old_count": (
            f"count(time() - {q.sel(SOURCE_ARTIFACT_UPDATED)} > {s.artifact_max_age_seconds})"
            " or vector(0)"
        ),
        "artifact_age": f"topk({s.top}, time() - {q.sel(SOURCE_ARTIFACT_UPDATED)})",
        "artifact_size": f"topk({s.top}, {q.sel(SOURCE_ARTIFACT_SIZE)})",
        "revisions_per_source": (
            f"sort_desc(count {by_source} "
            f"(count {q.by('kind', 'namespace', 'name', 'applied_revision')}"
            f" ({info})))"
        ),
        "revision_by_cluster": (f"{q.sel(RESOURCE_INFO, name=regex('$source'), **src)}"),
        "failing_by_kind": f"count by (kind, reason) ({q.sel(RESOURCE_STATUS, status=BAD, **src)})",
    }


def build(ctx: Context) -> dict[str, Any]:
    Q = queries(ctx)
    c = ctx.q.label("cluster")
    grid = Grid()
    grid.add(
        stat(
            "Sources failing",
            [target(Q["failing_count"], "A")],
            "Sources that cannot fetch (failing or stalled); they keep serving their last "
            "artifact.",
            steps=(("green", None), ("red", 1)),
        ),
        6,
        4,
    )
    grid.add(
        stat(
            "Artifacts older than the limit",
            [target(Q["old_count"], "A")],
            f"Artifacts produced more than {ctx.settings.artifact_max_age_seconds} s ago.",
            steps=(("green", None), ("orange", 1)),
        ),
        6,
        4,
    )
    grid.add(
        timeseries(
            "Fetch failures by kind and reason",
            [target(Q["failing_by_kind"], "A", "{{kind}} {{reason}}")],
            "Failing or stalled sources over time.",
            stacked=True,
        ),
        12,
        8,
    )
    grid.add(
        age_table(
            ctx,
            "Failing sources",
            Q["failing"],
            "Sources failing to fetch, with the reason and how long.",
            labels=("status", "reason"),
            header="for",
        ),
        24,
        8,
    )
    grid.add(
        age_table(
            ctx,
            "Oldest artifacts",
            Q["artifact_age"],
            "Time since each source's current artifact was produced.",
            header="age",
        ),
        12,
        8,
    )
    grid.add(
        table(
            "Largest artifacts",
            [target(Q["artifact_size"], "A", instant=True)],
            "Size of each source's current artifact.",
            columns=[c, "kind", "namespace", "name", "Value"],
            rename={"Value": "size"},
            units={"size": "bytes"},
            sort=("size", True),
        ),
        12,
        8,
    )
    grid.add(
        table(
            "Revisions per source across clusters",
            [target(Q["revisions_per_source"], "A", instant=True)],
            "How many different revisions the clusters hold of the same source (1 = all agree).",
            columns=["kind", "namespace", "name", "Value"],
            rename={"Value": "revisions"},
            links={"name": drilldown(ctx, "sources", source="name")},
            sort=("revisions", True),
        ),
        12,
        10,
    )
    grid.add(
        table(
            "Revision per cluster of $source",
            [target(Q["revision_by_cluster"], "A", instant=True)],
            "The revision each cluster has of the chosen source, with its URL and ref.",
            columns=[c, "kind", "namespace", "name", "applied_revision", "ref", "url"],
            links={c: drilldown(ctx, "cluster", cluster=c)},
        ),
        12,
        10,
    )
    return dashboard(
        ctx,
        NAME,
        TITLE,
        "Git, OCI, Bucket and Helm sources: fetch failures, artifact age and size, revisions.",
        grid,
        extra_variables=[
            template(
                ctx,
                "source",
                ctx.q.sel(RESOURCE_INFO, variables=("cluster",), kind=SOURCE_KINDS),
                "name",
            )
        ],
    )
