"""prometheus-client metrics built from catalogue specs: one way to turn a spec into a metric.

The exporter's self-metrics and watch health and the bridge's metrics all build their
instruments here, so the name each serves is the catalogue's (counters by family name, since
prometheus-client appends ``_total`` itself) and a spec of the wrong type fails at start.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from catalogue.specs import MetricSpec


def counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    assert spec.type == "counter", spec.name
    return Counter(spec.family, spec.help, list(spec.labels), registry=registry)


def gauge(spec: MetricSpec, registry: CollectorRegistry) -> Gauge:
    assert spec.type == "gauge", spec.name
    return Gauge(spec.name, spec.help, list(spec.labels), registry=registry)


def histogram(spec: MetricSpec, registry: CollectorRegistry) -> Histogram:
    assert spec.type == "histogram", spec.name
    return Histogram(
        spec.name, spec.help, list(spec.labels), buckets=spec.buckets, registry=registry
    )
