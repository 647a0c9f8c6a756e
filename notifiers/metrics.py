"""The bridge's own metrics, in its own ``CollectorRegistry`` (never the global one).

Every family is built from its spec in ``catalogue.bridge`` (name, help, type, labels, buckets),
so what dashboards and alerts read there is what ``/metrics`` serves.

Counters are updated where things happen; queue depth, oldest pending age, dead letters and
breaker state are read at scrape time from a ``QueueView`` so they can never drift from the
outbox they describe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from catalogue import bridge as catalogue
from catalogue.specs import MetricSpec
from plumbing.instruments import counter, gauge, histogram

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
        depth = _gauge_family(catalogue.QUEUE_DEPTH)
        oldest = _gauge_family(catalogue.OLDEST_PENDING_AGE)
        dead = _gauge_family(catalogue.DEAD_LETTERS)
        breaker = _gauge_family(catalogue.CIRCUIT_OPEN)
        if self.view is not None:
            for name, view in sorted(self.view.destinations_view().items()):
                depth.add_metric([name], view.queued)
                oldest.add_metric([name], view.oldest_pending_age)
                dead.add_metric([name], view.dead)
                breaker.add_metric([name], 1.0 if view.circuit_open else 0.0)
        return [depth, oldest, dead, breaker]


def _gauge_family(spec: MetricSpec) -> GaugeMetricFamily:
    assert spec.type == "gauge", spec.name
    return GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.received = counter(catalogue.EVENTS_RECEIVED, r)
        self.rejected = counter(catalogue.EVENTS_REJECTED, r)
        self.dropped = counter(catalogue.EVENTS_SUPPRESSED, r)
        self.notifications = counter(catalogue.NOTIFICATIONS_CREATED, r)
        self.deliveries = counter(catalogue.DELIVERIES, r)
        self.attempt_seconds = histogram(catalogue.DELIVERY_ATTEMPT_SECONDS, r)
        self.commit_batch = histogram(catalogue.OUTBOX_COMMIT_BATCH, r)
        self.store_up = gauge(catalogue.OUTBOX_STORE_UP, r)
        self.store_reconnects = counter(catalogue.OUTBOX_STORE_RECONNECTS, r)
        self.busy_seconds = counter(catalogue.OUTBOX_BUSY_SECONDS, r)
        self.replicas: Gauge | None = None  # notifiers/replicas.py, with a shared outbox only
        self.destinations_owned: Gauge | None = None
        self.lease_takeovers: Counter | None = None
        self.claim_seconds: Histogram | None = None
        self.commit_statuses = counter(catalogue.COMMIT_STATUSES, r)  # notifiers/statuspublisher
        self.commit_statuses_skipped = counter(catalogue.COMMIT_STATUSES_SKIPPED, r)
        self.queue = _QueueCollector()
        r.register(self.queue)
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}

    def add_replica_metrics(self) -> None:
        """The families only a replica sharing a PostgreSQL outbox has."""
        r = self.registry
        self.replicas = gauge(catalogue.OUTBOX_REPLICAS, r)
        self.destinations_owned = gauge(catalogue.OUTBOX_DESTINATIONS_OWNED, r)
        self.lease_takeovers = counter(catalogue.OUTBOX_LEASE_TAKEOVERS, r)
        self.claim_seconds = histogram(catalogue.OUTBOX_CLAIM_SECONDS, r)

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
