"""The watch layer's own health metrics, in a prometheus-client registry.

These count what happens to the watches (restarts, relists, API errors by code, decode errors,
events), per cluster. Reachability and the last full sync are not here: they travel to the store
through ``FluxObjectSink.cluster_changed`` and are rendered as fleet metrics beside the objects.
The registry is passed in (one per exporter, one per test), never the global one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter

RestartReason = Literal["timeout", "gone", "inactivity", "error"]

WATCH_RESTARTS = "fluxwatch_exporter_watch_restarts_total"
RELISTS = "fluxwatch_exporter_relists_total"
API_ERRORS = "fluxwatch_exporter_api_errors_total"
DECODE_ERRORS = "fluxwatch_exporter_decode_errors_total"
EVENTS = "fluxwatch_exporter_watch_events_total"


@dataclass(slots=True)
class ClusterCounters:
    """The children bound to one cluster, so the per-event path does no label lookup."""

    events: Counter
    decode_errors: Counter
    relists: Counter


class WatchHealth:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # prometheus-client appends _total to counter names itself.
        self.restarts = Counter(
            WATCH_RESTARTS.removesuffix("_total"),
            "Watch streams reopened, by reason: timeout (server ended it, routine), gone "
            "(410, relisted), inactivity (silent stream), error (connection or API error).",
            ["cluster", "reason"],
            registry=registry,
        )
        self.relists = Counter(
            RELISTS.removesuffix("_total"),
            "Full lists of a kind after the first one (410 Gone, reconnect after history loss).",
            ["cluster"],
            registry=registry,
        )
        self.api_errors = Counter(
            API_ERRORS.removesuffix("_total"),
            "Failed API requests by HTTP status code; 'connection' when no answer came.",
            ["cluster", "code"],
            registry=registry,
        )
        self.decode_errors = Counter(
            DECODE_ERRORS.removesuffix("_total"),
            "Watch lines or list items that were not valid JSON objects, or that the store "
            "could not take; each is skipped.",
            ["cluster"],
            registry=registry,
        )
        self.events = Counter(
            EVENTS.removesuffix("_total"),
            "Watch events processed (ADDED, MODIFIED, DELETED; bookmarks excluded).",
            ["cluster"],
            registry=registry,
        )
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
