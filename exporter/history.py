"""Memory of transitions: when each source revision first appeared, and the delivery aggregates
(transition and revision counters, latency and recovery histograms) rendered at scrape time.

Everything here is bounded: a source remembers its last ``PER_SOURCE`` revisions and a cluster
at most ``MAX_SOURCES`` sources (least recently updated forgotten first), so a fleet that churns
revisions for months keeps a constant footprint.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from exporter.status import ObjKey, revision_matches

PER_SOURCE = 16
MAX_SOURCES = 20_000


class RevisionMemory:
    """Per cluster: source -> revision -> unix time the revision first appeared."""

    def __init__(self, per_source: int = PER_SOURCE, max_sources: int = MAX_SOURCES) -> None:
        self._per_source = per_source
        self._max_sources = max_sources
        self._sources: OrderedDict[ObjKey, OrderedDict[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(revs) for revs in self._sources.values())

    def seen(self, source: ObjKey, revision: str, when: float) -> None:
        """Record a revision the first time it is seen; later sightings keep the first time."""
        if not revision:
            return
        revs = self._sources.get(source)
        if revs is None:
            revs = self._sources[source] = OrderedDict()
            while len(self._sources) > self._max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        if revision in revs:
            return
        revs[revision] = when
        while len(revs) > self._per_source:
            revs.popitem(last=False)

    def first_seen(self, source: ObjKey, applied: str) -> float | None:
        """When the source first offered the revision now applied (formats may differ)."""
        revs = self._sources.get(source)
        if not revs:
            return None
        exact = revs.get(applied)
        if exact is not None:
            return exact
        for revision, when in reversed(revs.items()):
            if revision_matches(revision, applied):
                return when
        return None

    def forget(self, source: ObjKey) -> None:
        self._sources.pop(source, None)


@dataclass(slots=True)
class Histogram:
    """Cumulative buckets for one label set."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> Iterator[tuple[float, int]]:
        running = 0
        counts = self.counts or [0] * len(self.bounds)
        for bound, n in zip(self.bounds, counts, strict=True):
            running += n
            yield bound, running


class Aggregates:
    """Counters and histograms keyed by label-value tuples (small: per cluster/kind/tenant)."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[str, ...], float]] = {}
        self.histograms: dict[str, dict[tuple[str, ...], Histogram]] = {}

    def inc(self, metric: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        series = self.counters.setdefault(metric, {})
        series[labels] = series.get(labels, 0.0) + amount

    def observe(
        self, metric: str, bounds: Iterable[float], labels: tuple[str, ...], value: float
    ) -> None:
        series = self.histograms.setdefault(metric, {})
        hist = series.get(labels)
        if hist is None:
            hist = series[labels] = Histogram(tuple(float(b) for b in bounds))
        hist.observe(value)

    def forget_cluster(self, cluster: str) -> None:
        """Drop a cluster's series (labels start with the cluster name)."""
        for counters in self.counters.values():
            for key in [k for k in counters if k and k[0] == cluster]:
                del counters[key]
        for histograms in self.histograms.values():
            for key in [k for k in histograms if k and k[0] == cluster]:
                del histograms[key]
