"""Every generated dashboard is well-formed for Grafana: datasources, ids, grid, variables,
links, and only metrics and labels the catalogue knows."""

from __future__ import annotations

import re
from itertools import combinations
from typing import Any

import pytest

from alerts.render import recording_rules
from alerts.settings import AlertSettings
from dashboards.build import generate
from dashboards.common import DATASOURCE, GRID_COLUMNS
from dashboards.settings import DashboardSettings
from tests.dashboards.inspect import (
    CATALOGUE,
    GRAFANA_BUILTINS,
    base_name,
    exprs,
    labels_used,
    link_urls,
    metric_names,
    panels,
    recorded_source,
    used_variables,
    variable_queries,
)

BOARDS = generate()
RECORDED = {r.record for r in recording_rules(AlertSettings())}
CASES = sorted(BOARDS)
SHARED_VARIABLES = ["datasource", "cluster", "namespace", "tenant", "kind"]


@pytest.fixture(params=CASES)
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    found: dict[str, Any] = BOARDS[request.param]
    return found


def test_every_dashboard_is_generated() -> None:
    assert (
        sorted(
            f"fluxwatch-{n}"
            for n in (
                "fleet",
                "cluster",
                "tenant",
                "sources",
                "rollouts",
                "delivery",
                "controllers",
                "fluxwatch",
            )
        )
        == CASES
    )


def test_every_panel_and_query_has_the_datasource_variable(board: dict[str, Any]) -> None:
    for panel in panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for t in panel.get("targets", []):
            assert t["datasource"] == DATASOURCE, (panel["title"], t["refId"])
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]


def test_panel_ids_are_unique(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in panels(board)]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids))


def test_panels_sit_inside_the_grid_without_overlapping(board: dict[str, Any]) -> None:
    boxes = []
    for panel in panels(board):
        pos = panel["gridPos"]
        assert min(pos["x"], pos["y"]) >= 0, panel["title"]
        assert min(pos["w"], pos["h"]) > 0, panel["title"]
        assert pos["x"] + pos["w"] <= GRID_COLUMNS, panel["title"]
        boxes.append((panel["title"], pos))
    for (ta, a), (tb, b) in combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{ta!r} overlaps {tb!r}"


def test_every_variable_used_is_defined(board: dict[str, Any]) -> None:
    defined = {v["name"] for v in board["templating"]["list"]}
    assert [v["name"] for v in board["templating"]["list"]][:5] == SHARED_VARIABLES
    texts = [*exprs(board), *variable_queries(board), *link_urls(board)]
    texts += [p["title"] for p in panels(board)]
    for text in texts:
        missing = used_variables(text) - defined - GRAFANA_BUILTINS
        assert not missing, f"{missing} undefined in {text}"


def test_every_panel_queries_something(board: dict[str, Any]) -> None:
    for panel in panels(board):
        if panel["type"] in ("row", "text"):
            continue
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_every_link_resolves_to_a_generated_dashboard(board: dict[str, Any]) -> None:
    urls = list(link_urls(board))
    assert len(urls) >= len(BOARDS) - 1  # at least the links to every other dashboard
    for url in urls:
        match = re.match(r"^/d/([a-z0-9-]+)(\?|$)", url)
        assert match, url
        assert match.group(1) in BOARDS, url
        assert match.group(1) != board["uid"] or "?" in url, f"a link to itself: {url}"


def test_every_metric_and_label_is_in_the_catalogue(board: dict[str, Any]) -> None:
    for expr in [*exprs(board), *variable_queries(board)]:
        names = metric_names(expr)
        assert names, expr
        specs = []
        for series in names:
            if ":" in series:
                assert series in RECORDED, f"{series} is not a recording rule of alerts/: {expr}"
                series = recorded_source(series)
            spec = CATALOGUE.get(base_name(series))
            assert spec is not None, f"{series} is not in the catalogue: {expr}"
            if series != spec.name and ":" not in series:
                assert spec.type == "histogram", series
            specs.append(spec)
        known = {label for spec in specs for label in spec.labels} | {"le"}
        known |= {"root_kind", "root_namespace", "root_name", "root_reason"}
        unknown = labels_used(expr) - known
        assert not unknown, f"labels {unknown} in {expr} are not labels of {sorted(names)}"
    for query in variable_queries(board):
        label = query.rsplit(",", 1)[1].strip(" )")
        spec = CATALOGUE[base_name(next(iter(metric_names(query))))]
        assert label in spec.labels, query


def test_the_cluster_label_and_selectors_are_configurable() -> None:
    settings = DashboardSettings(
        cluster_label="k8s_cluster", selector='job="fluxwatch"', datasource="thanos"
    )
    boards = generate(settings)
    for board in boards.values():
        datasource = board["templating"]["list"][0]
        assert datasource["current"]["value"] == "thanos"
        for expr in exprs(board):
            assert not re.search(r"(?<![$\w])cluster\b", expr), expr
        for expr in exprs(board):
            for name, matchers in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
                if name.startswith(("flux_", "fluxwatch_")):
                    assert 'job="fluxwatch"' in matchers, expr
    cluster_var = boards["fluxwatch-fleet"]["templating"]["list"][1]
    assert cluster_var["query"].endswith(", k8s_cluster)")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("cluster_label", "k8s-cluster", "not a label name"),
        ("selector", '{job="x"}', "without braces"),
        ("latency_window", "an hour", "not a duration"),
        ("uid_prefix", "Flux Watch", "lower-case"),
        ("stale_factor", 0, "positive"),
    ],
)
def test_bad_settings_are_rejected_with_the_field_named(field: str, value: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error) as info:
        DashboardSettings(**{field: value})
    assert field in str(info.value) or field == "stale_factor"


@pytest.mark.parametrize("cluster_label", ["cluster", "k8s_cluster"])
def test_recording_rules_used_are_the_ones_alerts_records(cluster_label: str) -> None:
    records = {r.record for r in recording_rules(AlertSettings(cluster_label=cluster_label))}
    used = set()
    for board in generate(DashboardSettings(cluster_label=cluster_label)).values():
        for expr in exprs(board):
            used |= {n for n in metric_names(expr) if ":" in n}
    assert used, "the dashboards read no recording rule"
    assert used <= records, used - records


def test_without_recording_rules_every_panel_reads_the_exporter() -> None:
    for board in generate(DashboardSettings(recording_rules=False)).values():
        for expr in exprs(board):
            assert not any(":" in n for n in metric_names(expr)), expr
