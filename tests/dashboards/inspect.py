"""Reading generated dashboards back: panels, queries, variables, links, metric names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from catalogue import bridge, controllers, exporter, prometheus

CATALOGUE = {**exporter.BY_NAME, **bridge.BY_NAME, **controllers.BY_NAME, **prometheus.BY_NAME}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
GRAFANA_BUILTINS = {
    "__all",
    "__data",
    "__from",
    "__interval",
    "__range",
    "__rate_interval",
    "__to",
    "__url_time_range",
}
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset",
}  # fmt: skip

_VARIABLE = re.compile(r"\$\{(\w+)(?:[:.][^}]*)?\}|\$(\w+)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"')
_GROUPING = re.compile(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def exprs(board: dict[str, Any]) -> Iterator[str]:
    for panel in panels(board):
        for t in panel.get("targets", []):
            yield t["expr"]


def variable_queries(board: dict[str, Any]) -> Iterator[str]:
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            yield var["query"]


def used_variables(text: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(text)}


_RECORDED = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")


def metric_names(expr: str) -> set[str]:
    """Every metric selected in ``expr``: ``name{...}``, and recording rules (``a:b:c``)."""
    names = {name for name, _ in _SELECTOR.findall(expr) if name not in PROMQL_WORDS}
    return names | set(_RECORDED.findall(expr))


def recorded_source(name: str) -> str:
    """The catalogue metric a recording rule ``level:metric:operations`` is built on."""
    middle = name.split(":")[1]
    candidates = [
        spec.name
        for spec in CATALOGUE.values()
        if middle == spec.family or middle.startswith(spec.family + "_")
    ]
    assert candidates, f"{name}: no catalogue metric named in it"
    return max(candidates, key=len)


def base_name(series: str) -> str:
    if series in CATALOGUE:
        return series
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix) and series[: -len(suffix)] in CATALOGUE:
            return series[: -len(suffix)]
    return series


def labels_used(expr: str) -> set[str]:
    """Labels in matchers and in by/on/group_left clauses."""
    found: set[str] = set()
    for _, body in _SELECTOR.findall(expr):
        found |= {name for name, _ in _MATCHER.findall(body)}
    for group in _GROUPING.findall(expr):
        found |= {label.strip() for label in group.split(",") if label.strip()}
    return found


def link_urls(board: dict[str, Any]) -> Iterator[str]:
    for link in board["links"]:
        yield link["url"]
    for panel in panels(board):
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            for prop in override["properties"]:
                if prop["id"] == "links":
                    for link in prop["value"]:
                        yield link["url"]
