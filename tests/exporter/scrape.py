"""Reading an exposition back with prometheus-client's parsers, for exact-value assertions."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.exposition import render
from exporter.store import MetricStore

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str, openmetrics: bool = False) -> Samples:
    parser = parse_om if openmetrics else parse_text
    out: Samples = {}
    for family in parser(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(store: MetricStore) -> Samples:
    return samples(render(store).decode())


def value(data: Samples, metric: str, /, **labels: str) -> float | None:
    """The value of the one sample whose labels include ``labels`` (None if absent)."""
    found = [v for (n, ls), v in data.items() if n == metric and set(labels.items()) <= ls]
    assert len(found) <= 1, f"{metric}{labels} matches {len(found)} samples"
    return found[0] if found else None


def series(data: Samples, metric: str, /, **labels: str) -> list[Mapping[str, str]]:
    return [dict(ls) for (n, ls) in data if n == metric and set(labels.items()) <= ls]
