"""Property: any JSON-shaped object, or a valid one with any field replaced, never raises out of
the store, and the exposition still parses."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.exposition import render
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import samples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
VALID = [o.kustomization(), o.helm_release(), o.git_repository(), o.canary(), o.image_policy()]


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    obj = copy.deepcopy(draw(st.sampled_from(VALID)))
    kind = obj["kind"]  # the watch layer always names the kind it watches
    path = draw(st.sampled_from(_paths(obj)))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(json_values)
    return kind, obj


KINDS = st.sampled_from(["Kustomization", "HelmRelease", "GitRepository", "Canary", "Alert"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(mutated(), st.tuples(KINDS, json_values)), min_size=1, max_size=4))
def test_never_raises_and_always_parses(events: list[tuple[str, Any]]) -> None:
    store = MetricStore(compat_info=True, clock=lambda: o.T0_UNIX)
    for kind, obj in events:
        store.upsert("c1", kind, obj)
        store.replace("c2", kind, [obj, obj])
    for kind, obj in events:
        store.delete("c1", kind, obj)
    text = render(store, "text").decode()
    samples(text)
    samples(render(store, "openmetrics").decode(), openmetrics=True)
    bugs = [
        sample
        for metric in store.metrics.registry.collect()
        for sample in metric.samples
        if sample.labels.get("reason") in ("derive_error", "store_error")
    ]
    assert bugs == []
