"""The watch layer's own health metrics, in a prometheus-client registry.

These count what happens to the watches (restarts, relists, API errors by code, decode errors,
events), per cluster. Reachability and the last full sync are not here: they travel to the store
through ``FluxObjectSink.cluster_changed`` and are rendered as fleet metrics beside the objects.
Names, help texts and labels come from ``catalogue.exporter.WATCH_HEALTH``, so dashboards and
alerts can name them. The registry is passed in (one per exporter, one per test), never the
global one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from catalogue import exporter as c

RestartReason = Literal["timeout", "gone", "inactivity", "error"]


def _counter(spec: c.MetricSpec, registry: CollectorRegistry) -> Counter:
    # prometheus-client appends _total to counter names itself: it takes the family name.
    return Counter(spec.family, spec.help, list(spec.labels), registry=registry)


@dataclass(slots=True)
class ClusterCounters:
    """The children bound to one cluster, so the per-event path does no label lookup."""

    events: Counter
    decode_errors: Counter
    relists: Counter


class WatchHealth:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.restarts = _counter(c.WATCH_RESTARTS, registry)
        self.relists = _counter(c.RELISTS, registry)
        self.api_errors = _counter(c.API_ERRORS, registry)
        self.decode_errors = _counter(c.DECODE_ERRORS, registry)
        self.events = _counter(c.WATCH_EVENTS, registry)
        spec = c.KUBECONFIG_FILES_UNUSABLE
        self.kubeconfig_files_unusable = Gauge(spec.name, spec.help, registry=registry)
        self._bound: dict[str, ClusterCounters] = {}

    def cluster(self, cluster: str) -> ClusterCounters:
        bound = self._bound.get(cluster)
        if bound is None:
            bound = ClusterCounters(
                events=self.events.labels(cluster),
                decode_errors=self.decode_errors.labels(cluster),
                relists=self.relists.labels(cluster),
            )
            self._bound[cluster] = bound
        return bound

    def restart(self, cluster: str, reason: RestartReason) -> None:
        self.restarts.labels(cluster, reason).inc()

    def api_error(self, cluster: str, code: int | None) -> None:
        self.api_errors.labels(cluster, "connection" if code is None else str(code)).inc()

    def forget(self, cluster: str) -> None:
        """Drops a removed cluster's series so they do not linger as stale counters."""
        self._bound.pop(cluster, None)
        for counter in (self.restarts, self.api_errors):
            for labels in list(_label_sets(counter)):
                if labels[0] == cluster:
                    counter.remove(*labels)
        for counter in (self.relists, self.decode_errors, self.events):
            with contextlib.suppress(KeyError):
                counter.remove(cluster)


def _label_sets(counter: Counter) -> list[tuple[str, ...]]:
    # prometheus-client has no public API to enumerate children; _metrics is stable since 0.4.
    with counter._lock:
        return [tuple(labels) for labels in counter._metrics]
