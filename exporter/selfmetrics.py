"""The store's and server's own health metrics, in a prometheus-client registry of their own.

prometheus-client is right for these few, rarely changing series; the Flux series are not held
here (formatting tens of thousands of samples on every scrape is what the store avoids). Names
come from the catalogue so alerts can rely on them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from catalogue import exporter as c


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.scrape_duration = Histogram(
            c.SELF_SCRAPE_DURATION.name,
            c.SELF_SCRAPE_DURATION.help,
            buckets=c.SELF_SCRAPE_DURATION.buckets,
            registry=self.registry,
        )
        self.malformed = Counter(
            c.SELF_MALFORMED.family,
            c.SELF_MALFORMED.help,
            list(c.SELF_MALFORMED.labels),
            registry=self.registry,
        )
        self.transitions_published = Counter(
            c.SELF_TRANSITIONS_PUBLISHED.family,
            c.SELF_TRANSITIONS_PUBLISHED.help,
            registry=self.registry,
        )
        self.transitions_dropped = Counter(
            c.SELF_TRANSITIONS_DROPPED.family,
            c.SELF_TRANSITIONS_DROPPED.help,
            list(c.SELF_TRANSITIONS_DROPPED.labels),
            registry=self.registry,
        )
        self.objects = Gauge(c.SELF_OBJECTS.name, c.SELF_OBJECTS.help, registry=self.registry)
        self.bridge_buffered = Gauge(
            c.SELF_BRIDGE_BUFFERED.name, c.SELF_BRIDGE_BUFFERED.help, registry=self.registry
        )
        self.bridge_sent = Counter(
            c.SELF_BRIDGE_SENT.family,
            c.SELF_BRIDGE_SENT.help,
            list(c.SELF_BRIDGE_SENT.labels),
            registry=self.registry,
        )
        self.bridge_dropped = Counter(
            c.SELF_BRIDGE_DROPPED.family,
            c.SELF_BRIDGE_DROPPED.help,
            list(c.SELF_BRIDGE_DROPPED.labels),
            registry=self.registry,
        )
        self.bridge_post_errors = Counter(
            c.SELF_BRIDGE_POST_ERRORS.family,
            c.SELF_BRIDGE_POST_ERRORS.help,
            list(c.SELF_BRIDGE_POST_ERRORS.labels),
            registry=self.registry,
        )
