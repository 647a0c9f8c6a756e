"""Pieces every fluxwatch dashboard shares: variables, links, panel shapes and the grid.

Panels are grafanalib objects; this module only fixes the choices made once for all dashboards
(the datasource variable on every panel and query, units, table shapes) and places panels on
Grafana's 24-column grid so that no two overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafanalib import core as g

from catalogue.exporter import CLUSTER_REACHABLE, CLUSTER_RESOURCES, RESOURCE_INFO, RESOURCE_STATUS
from dashboards.promql import PromQL
from dashboards.settings import DashboardSettings

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
TAGS = ["flux", "fluxwatch"]
ALL = ".*"


@dataclass(frozen=True, slots=True)
class Nav:
    """One generated dashboard, as the others link to it."""

    uid: str
    title: str


@dataclass(frozen=True, slots=True)
class Context:
    """What a dashboard builder gets: the settings, PromQL helpers and the other dashboards."""

    settings: DashboardSettings
    nav: tuple[Nav, ...]

    @property
    def q(self) -> PromQL:
        return PromQL(self.settings)

    def uid(self, name: str) -> str:
        return self.settings.uid(name)


def target(expr: str, ref: str, legend: str = "", *, instant: bool = False) -> g.Target:
    """One Prometheus query; instant queries are read as tables (one row per series)."""
    return g.Target(
        expr=expr,
        refId=ref,
        legendFormat=legend,
        instant=instant,
        format="table" if instant else "time_series",
        datasource=DATASOURCE,
    )


def stat(
    title: str,
    targets: Sequence[g.Target],
    description: str,
    *,
    unit: str = "none",
    steps: Sequence[tuple[str, float | None]] = (("green", None),),
) -> g.Stat:
    return g.Stat(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        format=unit,
        reduceCalc="lastNotNull",
        graphMode="none",
        thresholds=[{"color": c, "value": v} for c, v in steps],
    )


def timeseries(
    title: str,
    targets: Sequence[g.Target],
    description: str,
    *,
    unit: str = "short",
    stacked: bool = False,
    bars: bool = False,
) -> g.TimeSeries:
    return g.TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        unit=unit,
        stacking={"mode": "normal", "group": "A"} if stacked else {},
        drawStyle="bars" if bars else "line",
        fillOpacity=60 if (stacked or bars) else 10,
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["lastNotNull"],
    )


def table(
    title: str,
    targets: Sequence[g.Target],
    description: str,
    *,
    columns: Sequence[str],
    rename: dict[str, str] | None = None,
    units: dict[str, str] | None = None,
    links: dict[str, list[dict[str, Any]]] | None = None,
    sort: tuple[str, bool] | None = None,
) -> g.Table:
    """A table of instant queries merged into one row per series, showing ``columns`` in order.

    ``columns`` are field names as the queries give them (labels, ``Value`` for one query,
    ``Value #A`` per query when merged); ``rename`` maps a column to its header, ``units`` a
    header to a unit, ``links`` a header to data links (which may use
    ``${__data.fields.<column>}``).
    """
    transformations: list[dict[str, Any]] = []
    if len(targets) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations += [
        {"id": "filterFieldsByName", "options": {"include": {"names": list(columns)}}},
        {
            "id": "organize",
            "options": {
                "indexByName": {name: i for i, name in enumerate(columns)},
                "renameByName": dict(rename or {}),
            },
        },
    ]
    overrides: list[dict[str, Any]] = []
    for header, unit in sorted((units or {}).items()):
        overrides.append(
            {
                "matcher": {"id": "byName", "options": header},
                "properties": [{"id": "unit", "value": unit}],
            }
        )
    for header, header_links in sorted((links or {}).items()):
        overrides.append(
            {
                "matcher": {"id": "byName", "options": header},
                "properties": [{"id": "links", "value": header_links}],
            }
        )
    sort_by = [g.TableSortByField(displayName=sort[0], desc=sort[1])] if sort else []
    return g.Table(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        transformations=transformations,
        overrides=overrides,
        filterable=True,
        sortBy=sort_by,
    )


def age_table(
    ctx: Context,
    title: str,
    expr: str,
    description: str,
    *,
    header: str,
    labels: Sequence[str] = (),
) -> g.Table:
    """Flux objects with ``labels`` and an age in seconds (the query's value), oldest first;
    the cluster links to its Cluster dashboard."""
    c = ctx.q.label("cluster")
    return table(
        title,
        [target(expr, "A", instant=True)],
        description,
        columns=[c, "kind", "namespace", "name", *labels, "Value"],
        rename={"Value": header},
        units={header: "s"},
        links={c: drilldown(ctx, "cluster", cluster=c)},
        sort=(header, True),
    )


def state_timeline(title: str, targets: Sequence[g.Target], description: str) -> g.StateTimeline:
    """One row per series coloured by value: 0 green, some amber, many red."""
    return g.StateTimeline(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        thresholds=[
            {"color": "green", "value": None},
            {"color": "orange", "value": 1},
            {"color": "red", "value": 5},
        ],
        showValue="never",
        rowHeight=0.9,
        mergeValues=True,
    )


def heatmap(title: str, targets: Sequence[g.Target], description: str) -> g.Panel:
    """Grafana's heatmap over Prometheus histogram buckets (``format: heatmap``)."""
    for t in targets:
        t.format = "heatmap"
    return g.Heatmap(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=list(targets),
        dataFormat="tsbuckets",
        hideZeroBuckets=True,
        extraJson={"options": {"calculate": False, "yAxis": {"unit": "s"}}},
    )


def text(title: str, content: str) -> g.Text:
    return g.Text(title=title, content=content, mode="markdown", dataSource=DATASOURCE)


@dataclass
class Grid:
    """Places panels left to right on the 24-column grid, wrapping to a new line when full."""

    panels: list[g.Panel] = field(default_factory=list)
    x: int = 0
    y: int = 0
    line_height: int = 0

    def newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def add(self, panel: g.Panel, w: int, h: int) -> g.Panel:
        if not 0 < w <= GRID_COLUMNS:
            raise ValueError(f"{panel.title}: width {w} outside the {GRID_COLUMNS}-column grid")
        if self.x + w > GRID_COLUMNS:
            self.newline()
        panel.gridPos = g.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.panels.append(panel)
        self.x += w
        self.line_height = max(self.line_height, h)
        return panel

    def row(self, title: str) -> None:
        self.newline()
        self.add(g.RowPanel(title=title, dataSource=DATASOURCE), GRID_COLUMNS, 1)
        self.newline()


def template(ctx: Context, name: str, expr: str, label: str, **options: Any) -> g.Template:
    """A multi-value query variable over ``label``'s values in ``expr`` (All = any value)."""
    settings: dict[str, Any] = {
        "multi": True,
        "includeAll": True,
        "allValue": ALL,
        "default": "$__all",
    }
    settings.update(options)
    return g.Template(
        name=name,
        label=name,
        query=f"label_values({expr}, {ctx.q.label(label)})",
        dataSource=DATASOURCE,
        refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=g.SORT_ALPHA_IGNORE_CASE_ASC,
        type="query",
        **settings,
    )


def variables(ctx: Context, *, single_cluster: bool = False) -> list[g.Template]:
    """datasource, cluster, namespace, tenant, kind: the same names on every dashboard, so
    links carry a selection from one dashboard to the next."""
    q = ctx.q
    single: dict[str, Any] = (
        {"multi": False, "includeAll": False, "allValue": None, "default": None}
        if single_cluster
        else {}
    )
    return [
        g.Template(
            name="datasource",
            label="datasource",
            query="prometheus",
            type="datasource",
            default=ctx.settings.datasource,
        ),
        template(ctx, "cluster", q.sel(CLUSTER_REACHABLE, variables=()), "cluster", **single),
        template(ctx, "namespace", q.sel(RESOURCE_STATUS, variables=("cluster",)), "namespace"),
        template(ctx, "tenant", q.sel(RESOURCE_INFO, variables=("cluster",)), "tenant"),
        template(ctx, "kind", q.sel(CLUSTER_RESOURCES, variables=("cluster",)), "kind"),
    ]


def dashboard_links(ctx: Context, self_uid: str) -> list[g.DashboardLink]:
    """A link to every other fluxwatch dashboard, keeping the time range and the variables."""
    return [
        g.DashboardLink(
            title=nav.title,
            uri=f"/d/{nav.uid}",
            type="link",
            icon="dashboard",
            includeVars=True,
            keepTime=True,
            tooltip=f"Open {nav.title} with the same selection",
        )
        for nav in ctx.nav
        if nav.uid != self_uid
    ]


def drilldown(ctx: Context, name: str, **fields: str) -> list[dict[str, Any]]:
    """A data link to another dashboard: the row's ``fields`` become its variables."""
    nav = {n.uid: n for n in ctx.nav}[ctx.uid(name)]
    params = "&".join(
        f"var-{var}=${{__data.fields.{column}}}" for var, column in sorted(fields.items())
    )
    url = f"/d/{nav.uid}?{params}&${{datasource:queryparam}}&${{__url_time_range}}"
    return [{"title": f"Open in {nav.title}", "url": url}]


def dashboard(
    ctx: Context,
    name: str,
    title: str,
    description: str,
    grid: Grid,
    *,
    extra_variables: Sequence[g.Template] = (),
    single_cluster: bool = False,
) -> dict[str, Any]:
    """The finished dashboard as Grafana's JSON model (a plain dict)."""
    uid = ctx.uid(name)
    board = g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=TAGS,
        timezone="utc",
        time=g.Time("now-6h", "now"),
        refresh="1m",
        editable=False,
        panels=grid.panels,
        links=dashboard_links(ctx, uid),
        templating=g.Templating(
            list=[*variables(ctx, single_cluster=single_cluster), *extra_variables]
        ),
    ).auto_panel_ids()
    encoded: dict[str, Any] = _plain(board.to_json_data())
    return encoded


def _plain(value: Any) -> Any:
    """grafanalib objects (anything with ``to_json_data``) turned into dicts and lists."""
    if hasattr(value, "to_json_data"):
        return _plain(value.to_json_data())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
