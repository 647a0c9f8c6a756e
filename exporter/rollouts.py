"""Rollout state as one exporter sees it: per cluster, every applier object's revisions.

A rollout is one source revision of one object identity (kind/namespace/name) across the
clusters running that object. This exporter (or shard) knows its own clusters only; it

- serves ``flux_rollout_clusters{kind,namespace,name,revision,state}``: how many of its clusters
  are applied / pending / failing on the revision each object is rolling out to, so Prometheus
  can ``sum`` the shards into the fleet;
- hands changed clusters' applier objects to a reporter (the bridge client), so the bridge can
  count the whole fleet and publish one status per commit.

Both come from one periodic scan of the store (applier objects only: a few per cluster), which
keeps the store's hot path untouched. The functions deciding a cluster's state are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from catalogue import exporter as c
from exporter.families._common import ObjectState
from exporter.status import Derived
from exporter.store import MetricStore

log = logging.getLogger(__name__)

SCAN_INTERVAL = 1.0  # a rollout step is minutes; a second of delay costs nothing
MAX_MESSAGE = 300  # a failure's message as shown on the rollout view
_FAILING = frozenset({"failing", "stalled"})


class RolloutReporter(Protocol):
    def report(self, clusters: Mapping[str, Sequence[Mapping[str, Any]]], synced: bool) -> None:
        """Changed clusters' applier objects; an empty list means the cluster has none left."""


def target_revision(state: ObjectState) -> str:
    """The revision the object is rolling out to: the one it still wants, else the applied one."""
    d = state.derived
    return state.wanted_revision or d.attempted_revision or d.applied_revision


def cluster_state(state: ObjectState) -> str:
    """applied | pending | failing for one object in one cluster (pure)."""
    d = state.derived
    if d.status in _FAILING:
        return "failing"
    target = target_revision(state)
    return "applied" if target and target == d.applied_revision else "pending"


def target_origin(state: ObjectState, source: Derived | None) -> str:
    """The Git revision the target revision's artifact was built from, "" when unrecorded.

    An OCI artifact's revision is a digest, not a commit; Flux records the commit it came from
    on the applier once applied (``lastAppliedOriginRevision``) and on the source's artifact
    before that, so a fleet status can name the commit while the rollout is still pending.
    """
    d = state.derived
    target = target_revision(state)
    if not target:
        return ""
    if target == d.applied_revision and d.origin_revision:
        return d.origin_revision
    if source is not None and source.offered_revision == target:
        return source.origin_revision
    return ""


def object_report(state: ObjectState, source_url: str, origin: str = "") -> dict[str, Any]:
    """What the bridge needs of one applier object in one cluster (plain JSON)."""
    d = state.derived
    return {
        "kind": d.kind,
        "namespace": d.namespace,
        "name": d.name,
        "applied": d.applied_revision,
        "attempted": d.attempted_revision,
        "wanted": state.wanted_revision,
        "status": d.status,
        "reason": d.reason,
        "message": d.message[:MAX_MESSAGE],
        "applied_at": d.applied_at,
        "source_url": source_url,
        # origin_revision belongs to origin_of: the revision this cluster is rolling out to
        "origin_revision": origin,
        "origin_of": target_revision(state) if origin else "",
    }


class RolloutTracker(Collector):
    """Scans the store, serves ``flux_rollout_clusters`` and feeds the reporter on changes."""

    def __init__(
        self,
        store: MetricStore,
        reporter: RolloutReporter | None,
        synced: Callable[[], bool],
    ) -> None:
        self._store = store
        self._reporter = reporter
        self._synced = synced
        self._sent: dict[str, tuple[Any, ...]] = {}
        self._counts: Counter[tuple[str, str, str, str, str]] = Counter()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._task: asyncio.Task[None] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        spec = c.ROLLOUT_CLUSTERS
        family = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
        for labels, count in sorted(self._counts.items()):
            family.add_metric(list(labels), count)
        yield family

    def scan(self) -> None:
        """One pass: recount, and report clusters whose applier objects changed."""
        counts: Counter[tuple[str, str, str, str, str]] = Counter()
        changed: dict[str, list[dict[str, Any]]] = {}
        seen: set[str] = set()
        for name, cl in list(self._store.clusters.items()):
            if cl.state is None or not cl.state.synced:
                continue  # half a list would count objects as gone
            seen.add(name)
            # A cheap tuple per object decides whether the cluster changed; the report's dicts
            # are only built for clusters that did (at 500 clusters most scans build none).
            rows: list[tuple[Any, ...]] = []
            states: list[tuple[ObjectState, str, str]] = []
            for kind in c.APPLIER_KINDS:
                kd = cl.kinds.get(kind)
                if kd is None:
                    continue
                for state in kd.states.values():
                    d = state.derived
                    revision = target_revision(state)
                    if revision:
                        counts[(d.kind, d.namespace, d.name, revision, cluster_state(state))] += 1
                    src = cl.lookup(d.source) if d.source is not None else None
                    url = src.url if src is not None else ""
                    origin = target_origin(state, src)
                    rows.append(
                        (d.kind, d.namespace, d.name, d.applied_revision, d.attempted_revision,
                         state.wanted_revision, d.status, d.reason, d.message[:MAX_MESSAGE],
                         d.applied_at, url, origin)
                    )  # fmt: skip
                    states.append((state, url, origin))
            fingerprint = tuple(sorted(rows, key=lambda r: (r[0], r[1], r[2])))
            if self._sent.get(name) != fingerprint:
                self._sent[name] = fingerprint
                objects = [object_report(state, url, origin) for state, url, origin in states]
                objects.sort(key=lambda o: (o["kind"], o["namespace"], o["name"]))
                changed[name] = objects
        for gone in set(self._sent) - seen - set(self._store.clusters):
            del self._sent[gone]  # left the configuration (or moved to another shard)
            changed[gone] = []
        self._counts = counts
        if self._reporter is not None and changed:
            self._reporter.report(changed, self._synced())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rollouts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        last_synced = False
        while True:
            try:
                synced = self._synced()
                if synced != last_synced:
                    self._sent.clear()  # report every cluster again with the new flag
                    last_synced = synced
                self.scan()
            except Exception:  # a bug here must not stop the exporter
                log.exception("rollout scan failed")
            await asyncio.sleep(SCAN_INTERVAL)
