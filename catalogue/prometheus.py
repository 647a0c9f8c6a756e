"""Series Prometheus itself writes for every scrape target (not served by fluxwatch).

The "fluxwatch itself" dashboard reads them to show how large and slow the exporter's
``/metrics`` is from Prometheus's side.
"""

from __future__ import annotations

from catalogue.specs import MetricSpec

SCRAPE_DURATION = MetricSpec(
    "scrape_duration_seconds",
    "How long Prometheus took to scrape the target.",
    "gauge",
    ("job", "instance"),
)
SCRAPE_SAMPLES = MetricSpec(
    "scrape_samples_scraped",
    "Samples the target exposed in the last scrape.",
    "gauge",
    ("job", "instance"),
)
UP = MetricSpec(
    "up",
    "1 when the last scrape of the target succeeded.",
    "gauge",
    ("job", "instance"),
)

ALL: tuple[MetricSpec, ...] = (SCRAPE_DURATION, SCRAPE_SAMPLES, UP)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in ALL}
