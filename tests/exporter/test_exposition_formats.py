"""The whole exposition: promtool check metrics, both prometheus-client parsers, format details."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import CollectorRegistry, Counter

from catalogue import exporter as catalogue
from exporter.exposition import gzip_accepted, negotiate, render
from tests.exporter.fleet import full_store
from tests.exporter.scrape import samples, value


def _extra_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("fluxwatch_exporter_test_events", "Events.", ["cluster"], registry=registry).labels(
        "a"
    ).inc()
    return registry


def test_promtool_accepts_the_whole_exposition(promtool: str) -> None:
    body = render(full_store(), "text", [_extra_registry()])
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b""
    assert result.stderr.strip() == b""


def test_text_and_openmetrics_parse_to_the_same_samples() -> None:
    store = full_store()
    text = samples(render(store, "text", [_extra_registry()]).decode())
    om_body = render(store, "openmetrics", [_extra_registry()]).decode()
    assert om_body.endswith("# EOF\n")
    assert om_body.count("# EOF") == 1
    om = samples(om_body, openmetrics=True)
    assert "# TYPE flux_resource_transitions counter" in om_body
    assert "# TYPE flux_resource_transitions_total counter" not in om_body
    # OpenMetrics adds _created samples to prometheus-client counters; ours have none.
    om = {k: v for k, v in om.items() if not k[0].endswith("_created")}
    text = {k: v for k, v in text.items() if not k[0].endswith("_created")}
    assert om == text


def test_every_aggregate_and_family_is_served() -> None:
    body = render(full_store(), "text").decode()
    for spec in (
        *catalogue.PER_OBJECT,
        catalogue.GOTK_RESOURCE_INFO,
        *catalogue.AGGREGATES,
        *catalogue.SELF,
    ):
        assert f"# TYPE {spec.name} {spec.type}" in body, spec.name


def test_fleet_values() -> None:
    data = samples(render(full_store(), "text").decode())
    assert value(data, "flux_cluster_reachable", cluster="prod-eu") == 0
    assert value(data, "flux_cluster_synced", cluster="prod-eu") == 1
    assert value(data, "flux_cluster_kind_served_info", cluster="prod-eu", kind="HelmRelease") == 1
    assert (
        value(
            data, "flux_cluster_resources", cluster="prod-eu", kind="HelmRelease", status="stalled"
        )
        == 1
    )
    assert value(data, "flux_revision_apply_latency_seconds_sum", cluster="prod-eu") == 60
    assert value(data, "flux_resource_time_to_recover_seconds_count", cluster="prod-eu") == 1
    # the odd cluster name survives escaping and parsing
    assert value(data, "flux_cluster_reachable", cluster='odd "name"\\x') == 1


def test_escaped_label_values_round_trip() -> None:
    store = full_store()
    for name in ('quote"d', "back\\slash", "new\nline"):
        from tests.exporter import objects as o

        obj = o.kustomization()
        obj["metadata"].update(uid=f"uid-{name}", labels={"toolkit.fluxcd.io/tenant": name})
        obj["metadata"]["name"] = name
        store.upsert("prod-eu", "Kustomization", obj)
    data = samples(render(store).decode())
    tenants = {v for (n, ls) in data if n == "flux_resource_info" for k, v in ls if k == "tenant"}
    assert {'quote"d', "back\\slash", "new\nline"} <= tenants


def test_long_and_undecodable_label_values_are_bounded() -> None:
    from tests.exporter import objects as o

    store = full_store()
    long_name = "n" * 1000
    obj = o.kustomization(long_name)
    obj["metadata"]["labels"] = {"toolkit.fluxcd.io/tenant": "team-\ud800"}
    store.upsert("prod-eu", "Kustomization", obj)
    data = samples(render(store).decode())
    names = {v for (n, ls) in data if n == "flux_resource_status" for k, v in ls if k == "name"}
    assert "n" * 253 + "..." in names
    tenants = {v for (n, ls) in data if n == "flux_resource_info" for k, v in ls if k == "tenant"}
    assert "team-?" in tenants


def test_content_negotiation_table() -> None:
    prometheus = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
        "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    assert negotiate(prometheus) == "openmetrics"
    assert negotiate("text/plain;version=0.0.4") == "text"
    assert negotiate(None) == "text"
    assert negotiate("*/*") == "text"
    assert negotiate("application/openmetrics-text;q=0.2,text/plain;q=0.9") == "text"


def test_the_store_registry_passed_again_is_not_duplicated() -> None:
    store = full_store()
    body = render(store, "openmetrics", [store.metrics.registry, _extra_registry()]).decode()
    assert body.count("# TYPE fluxwatch_exporter_scrape_duration_seconds ") == 1
    samples(body, openmetrics=True)  # a duplicated family would not parse


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0", False),
        ("identity", False),
        (None, False),
        ("x-gzip", True),
    ],
    ids=["gzip", "list", "q-half", "q-zero", "q-zero-float", "identity", "absent", "x-gzip"],
)
def test_gzip_negotiation(header: str | None, accepted: bool) -> None:
    assert gzip_accepted(header) is accepted
