"""The store's and server's own health metrics, in a prometheus-client registry of their own.

prometheus-client is right for these few, rarely changing series; the Flux series are not held
here (formatting tens of thousands of samples on every scrape is what the store avoids). Names
come from the catalogue so alerts can rely on them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from catalogue import exporter as c
from plumbing.instruments import counter, gauge, histogram


class SelfMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.scrape_duration = histogram(c.SELF_SCRAPE_DURATION, r)
        self.malformed = counter(c.SELF_MALFORMED, r)
        self.transitions_published = counter(c.SELF_TRANSITIONS_PUBLISHED, r)
        self.transitions_dropped = counter(c.SELF_TRANSITIONS_DROPPED, r)
        self.objects = gauge(c.SELF_OBJECTS, r)
        self.bridge_buffered = gauge(c.SELF_BRIDGE_BUFFERED, r)
        self.bridge_sent = counter(c.SELF_BRIDGE_SENT, r)
        self.bridge_dropped = counter(c.SELF_BRIDGE_DROPPED, r)
        self.bridge_post_errors = counter(c.SELF_BRIDGE_POST_ERRORS, r)
