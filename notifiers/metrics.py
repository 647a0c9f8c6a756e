"""The bridge's own metrics, in its own ``CollectorRegistry`` (never the global one).

Counters are updated where things happen; queue depth, oldest pending age, dead letters and
breaker state are read at scrape time from a ``QueueView`` so they can never drift from the
outbox they describe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

M = TypeVar("M", bound=MetricWrapperBase)


@dataclass(frozen=True, slots=True)
class DestinationView:
    queued: int  # deliveries waiting for their group plus notifications not yet delivered
    oldest_pending_age: float  # seconds; 0 when nothing waits
    dead: int
    circuit_open: bool


class QueueView(Protocol):
    def destinations_view(self) -> Mapping[str, DestinationView]: ...


class _QueueCollector(Collector):
    def __init__(self) -> None:
        self.view: QueueView | None = None

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "fluxwatch_bridge_queue_depth",
            "Deliveries not yet delivered (waiting for their group or for an attempt).",
            labels=["destination"],
        )
        oldest = GaugeMetricFamily(
            "fluxwatch_bridge_oldest_pending_age_seconds",
            "Age of the oldest undelivered delivery per destination.",
            labels=["destination"],
        )
        dead = GaugeMetricFamily(
            "fluxwatch_bridge_dead_letters",
            "Notifications in the dead-letter state (replay with fluxwatch outbox replay).",
            labels=["destination"],
        )
        breaker = GaugeMetricFamily(
            "fluxwatch_bridge_circuit_open",
            "1 while the destination's circuit breaker is open.",
            labels=["destination"],
        )
        if self.view is not None:
            for name, view in sorted(self.view.destinations_view().items()):
                depth.add_metric([name], view.queued)
                oldest.add_metric([name], view.oldest_pending_age)
                dead.add_metric([name], view.dead)
                breaker.add_metric([name], 1.0 if view.circuit_open else 0.0)
        return [depth, oldest, dead, breaker]


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "fluxwatch_bridge_events_received",
            "Events accepted and durably stored, by source (flux, alertmanager, transition).",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            "fluxwatch_bridge_events_rejected",
            "Payloads rejected at intake, by source and reason "
            "(malformed_json, invalid_event, bad_signature, bad_token, too_large, storage).",
            ["source", "reason"],
            registry=r,
        )
        self.dropped = Counter(
            "fluxwatch_bridge_events_suppressed",
            "Stored events that produced no delivery, by reason "
            "(duplicate, once_per_revision, no_change, muted, unrouted).",
            ["reason"],
            registry=r,
        )
        self.notifications = Counter(
            "fluxwatch_bridge_notifications_created",
            "Notifications (one event or a group) created per destination.",
            ["destination"],
            registry=r,
        )
        self.deliveries = Counter(
            "fluxwatch_bridge_deliveries",
            "Delivery attempts by destination and outcome (delivered, retry, dead).",
            ["destination", "outcome"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "fluxwatch_bridge_delivery_attempt_seconds",
            "Duration of one delivery attempt.",
            ["destination"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.commit_batch = Histogram(
            "fluxwatch_bridge_outbox_commit_batch_size",
            "Operations per outbox transaction (group commit).",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=r,
        )
        self.queue = _QueueCollector()
        r.register(self.queue)
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}

    def child(self, metric: M, *values: str) -> M:
        """``metric.labels(*values)``, cached.

        ``labels()`` takes a lock and rebuilds its key on every call (about 1.5 µs); intake and
        delivery look children up per event, so they keep them. Values are in the metric's label
        order. A child is never removed from these metrics, so the cache cannot go stale.
        """
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found  # type: ignore[return-value]
