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

from prometheus_client import CollectorRegistry, Counter

from catalogue import exporter as c
from plumbing.instruments import counter, gauge

RestartReason = Literal["timeout", "gone", "inactivity", "error"]


@dataclass(slots=True)
class ClusterCounters:
    """The children bound to one cluster, so the per-event path does no label lookup."""

    events: Counter
    decode_errors: Counter
    relists: Counter


class WatchHealth:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.restarts = counter(c.WATCH_RESTARTS, registry)
        self.relists = counter(c.RELISTS, registry)
        self.api_errors = counter(c.API_ERRORS, registry)
        self.decode_errors = counter(c.DECODE_ERRORS, registry)
        self.events = counter(c.WATCH_EVENTS, registry)
        self.kubeconfig_files_unusable = gauge(c.KUBECONFIG_FILES_UNUSABLE, registry)
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
        for metric in (self.restarts, self.api_errors):
            for labels in list(_label_sets(metric)):
                if labels[0] == cluster:
                    metric.remove(*labels)
        for metric in (self.relists, self.decode_errors, self.events):
            with contextlib.suppress(KeyError):
                metric.remove(cluster)


def _label_sets(counter: Counter) -> list[tuple[str, ...]]:
    # prometheus-client has no public API to enumerate children; _metrics is stable since 0.4.
    with counter._lock:
        return [tuple(labels) for labels in counter._metrics]
