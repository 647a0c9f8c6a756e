"""The per-object families are built from the catalogue's one table, and a sampler that returns
the wrong number of label values fails loudly instead of shifting values onto other labels."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from catalogue import exporter as catalogue
from exporter.families import FAMILIES, SAMPLERS, Family, ObjectState, build_families
from exporter.families._common import render_object
from exporter.kube.health import WatchHealth
from exporter.status import derive
from exporter.store import MetricStore
from tests.exporter import objects as o


def test_families_follow_the_table_order() -> None:
    assert tuple(f.spec for f in FAMILIES) == catalogue.PER_OBJECT


@pytest.mark.parametrize(
    ("table", "drop", "problem"),
    [
        (catalogue.PER_OBJECT, None, None),
        (
            catalogue.PER_OBJECT,
            catalogue.RESOURCE_INFO,
            "no sampler for \\['flux_resource_info'\\]",
        ),
        (catalogue.PER_OBJECT[1:], None, "outside the table: \\['flux_resource_status'\\]"),
    ],
    ids=["in-step", "spec-without-sampler", "sampler-without-spec"],
)
def test_a_table_out_of_step_with_the_samplers_fails_at_build(
    table: tuple[catalogue.MetricSpec, ...],
    drop: catalogue.MetricSpec | None,
    problem: str | None,
) -> None:
    samplers = {spec: fn for spec, fn in SAMPLERS.items() if spec is not drop}
    if problem is None:
        assert len(build_families(table, samplers)) == len(table)
    else:
        with pytest.raises(RuntimeError, match=problem):
            build_families(table, samplers)


@pytest.mark.parametrize("values", [("ready",), ("ready", "Ok", "", "", "", "", "extra")])
def test_a_label_count_mismatch_is_an_error(values: tuple[str, ...]) -> None:
    derived, _ = derive("Kustomization", o.kustomization())
    broken = Family(catalogue.RESOURCE_STATUS, lambda s: ((values, 1.0),))
    with pytest.raises(ValueError, match="zip"):
        render_object(ObjectState("c1", derived), (broken,), [])


def test_the_store_counts_a_family_bug_and_keeps_serving() -> None:
    store = MetricStore()
    broken = Family(catalogue.RESOURCE_STATUS, lambda s: ((("ready",), 1.0),))
    store.families = (broken, *store.families[1:])
    store.upsert("c1", "Kustomization", o.kustomization())
    value = store.metrics.registry.get_sample_value(
        catalogue.SELF_MALFORMED.name,
        {"cluster": "c1", "kind": "Kustomization", "reason": "store_error"},
    )
    assert value == 1


def test_watch_health_metrics_are_the_catalogue_specs() -> None:
    registry = CollectorRegistry()
    health = WatchHealth(registry)
    health.restart("c1", "timeout")
    health.api_error("c1", 401)
    bound = health.cluster("c1")
    bound.events.inc()
    bound.decode_errors.inc()
    bound.relists.inc()
    served = {
        metric.name: (metric.type, metric.documentation, metric.samples[0].labels.keys())
        for metric in registry.collect()
    }
    expected = {
        spec.family: (spec.type, spec.help, set(spec.labels)) for spec in catalogue.WATCH_HEALTH
    }
    assert {k: (t, h, set(labels)) for k, (t, h, labels) in served.items()} == expected
