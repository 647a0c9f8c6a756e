"""The metric store: the ``FluxObjectSink`` the watch layer feeds, holding pre-rendered lines.

Per (cluster, kind) it keeps the derived state of each object and, per metric family, a column
``uid -> bytes`` of that object's exposition lines, re-rendered only on that object's watch event
(or when a neighbour it points at changes status, since root cause and drift depend on it). A
scrape joins the columns (their layout: ``exporter.clusterdata``). ``replace`` builds a whole new
``KindData`` and swaps one reference, so a scrape sees the old complete set or the new one, never
a half-filled one. What a change means for the owning team (transitions, time to recover,
commit-to-applied latency) is worked out by ``exporter.detection``; the store publishes it.

Everything here runs on the one event loop and never awaits, so no lock is needed; and nothing
raises into the watch layer: a bad object is counted and logged once, never fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from catalogue import exporter as c
from exporter.clusterdata import ClusterData, KindData
from exporter.detection import build_transition, detect, observe_source
from exporter.families import Family, ObjectState, families_for, render_object
from exporter.families._common import RETRYING
from exporter.history import Aggregates
from exporter.kinds import SOURCE_KINDS
from exporter.publisher import TransitionPublisher
from exporter.rootcause import find_root, wanted_revision
from exporter.selfmetrics import SelfMetrics
from exporter.sink import ClusterState, FluxObject
from exporter.status import QUIET_PROBLEMS, Derived, ObjKey, derive
from exporter.transitions import Transition, TransitionType

log = logging.getLogger(__name__)

_BAD = frozenset({"failing", "stalled"})


def _summary(state: ObjectState | None) -> tuple[Any, ...]:
    """What dependents read of an object: a change here re-renders them."""
    if state is None:
        return ()
    d = state.derived
    return (d.status, d.reason, d.offered_revision, state.root, state.failure_reason)


class MetricStore:
    """Implements ``exporter.sink.FluxObjectSink``."""

    def __init__(
        self,
        per_object: str = "all",
        compat_info: bool = False,
        metrics: SelfMetrics | None = None,
        publisher: TransitionPublisher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_object not in c.PER_OBJECT_MODES:
            raise ValueError(f"per_object must be one of {', '.join(c.PER_OBJECT_MODES)}")
        self.per_object = per_object
        self.families: tuple[Family, ...] = families_for(compat_info)
        self.metrics = metrics if metrics is not None else SelfMetrics()
        self.publisher = publisher
        self.clock = clock
        self.clusters: dict[str, ClusterData] = {}
        self.aggregates = Aggregates()

    # FluxObjectSink ------------------------------------------------------------------------

    def replace(self, cluster: str, kind: str, objects: Sequence[FluxObject]) -> None:
        try:
            self._replace(cluster, kind, objects)
        except Exception:  # never into the watch layer; the previous set stays served
            self._count(cluster, kind, "store_error")
            log.exception(
                "cluster %s: replacing %s failed; keeping the previous set", cluster, kind
            )

    def upsert(self, cluster: str, kind: str, obj: FluxObject) -> None:
        try:
            self._upsert(cluster, kind, obj)
        except Exception:
            self._count(cluster, kind, "store_error")
            log.exception("cluster %s: %s event could not be stored", cluster, kind)

    def delete(self, cluster: str, kind: str, obj: FluxObject) -> None:
        try:
            self._delete(cluster, kind, obj)
        except Exception:
            self._count(cluster, kind, "store_error")
            log.exception("cluster %s: %s delete could not be applied", cluster, kind)

    def cluster_changed(self, cluster: str, state: ClusterState) -> None:
        cl = self._cluster(cluster)
        previous = cl.state
        cl.state = state
        cl.state_text = None
        if previous is None or previous.reachable == state.reachable:
            return
        kind: TransitionType = "cluster_reachable" if state.reachable else "cluster_unreachable"
        self._publish(
            Transition(type=kind, cluster=cluster, timestamp=self.clock(), message=state.error)
        )

    def forget_cluster(self, cluster: str) -> None:
        self.clusters.pop(cluster, None)
        self.aggregates.forget_cluster(cluster)

    # Read side (exposition, status page, readiness) ---------------------------------------

    def object_count(self) -> int:
        return sum(len(kd.states) for cl in self.clusters.values() for kd in cl.kinds.values())

    def ready(self) -> bool:
        """Every reachable cluster finished its first full sync (and at least one reported)."""
        states = [cl.state for cl in self.clusters.values() if cl.state is not None]
        if not states:
            return False
        return all(s.synced or s.last_full_sync is not None for s in states if s.reachable)

    def state_of(self, cluster: str, kind: str, namespace: str, name: str) -> ObjectState | None:
        cl = self.clusters.get(cluster)
        return None if cl is None else cl.index.get((kind, namespace, name))

    # Internals ------------------------------------------------------------------------------

    def _cluster(self, name: str) -> ClusterData:
        cl = self.clusters.get(name)
        if cl is None:
            cl = self.clusters[name] = ClusterData(name, len(self.families))
        return cl

    def _kind(self, cl: ClusterData, kind: str) -> KindData:
        kd = cl.kinds.get(kind)
        if kd is None:
            kd = cl.kinds[kind] = cl.new_kind()
        return kd

    def _count(self, cluster: str, kind: str, reason: str) -> None:
        self.metrics.malformed.labels(cluster, kind, reason).inc()

    def _derive(self, cl: ClusterData, kind: str, obj: FluxObject) -> Derived | None:
        if not isinstance(obj, Mapping):
            self._count(cl.name, kind, "undecodable")
            log.warning("cluster %s: a %s event is not an object; skipped", cl.name, kind)
            return None
        try:
            derived, problems = derive(kind, obj)
        except Exception:  # a bug in derive: count it, keep the previous state, carry on
            self._count(cl.name, kind, "derive_error")
            log.exception("cluster %s: a %s could not be derived; skipped", cl.name, kind)
            return None
        if problems:
            self._problems(cl, derived, problems)
        return derived

    def _problems(self, cl: ClusterData, d: Derived, problems: Iterable[str]) -> None:
        problems = list(problems)
        for problem in problems:
            self._count(cl.name, d.kind, problem)
        if d.uid not in cl.logged and not QUIET_PROBLEMS.issuperset(problems):
            cl.logged.add(d.uid)
            log.warning(
                "cluster %s: %s %s/%s is malformed (%s); exported as far as possible",
                cl.name,
                d.kind,
                d.namespace,
                d.name,
                ", ".join(problems),
            )

    def _new_state(
        self, cl: ClusterData, d: Derived, prev: ObjectState | None, now: float
    ) -> ObjectState:
        if prev is not None and prev.derived.status == d.status:
            since = prev.since
        elif prev is not None and d.status in _BAD and prev.bad_status == d.status:
            # Back from a retry (Flux shows Ready=Unknown while it runs): still failing since
            # the first failure, so "failing for 15 minutes" can fire for an object that keeps
            # retrying, the case it exists for.
            since = prev.bad_since
        else:
            since = d.since if d.since is not None else now
        bad_status, bad_since = "", None
        if d.status in _BAD:
            bad_status, bad_since = d.status, since
            failing_since = prev.failing_since if prev is not None else None
            if failing_since is None:
                failing_since = since
            failure_reason = d.reason
        elif d.status == "ready":
            failing_since, failure_reason = None, ""
        else:
            failing_since = prev.failing_since if prev is not None else None
            failure_reason = prev.failure_reason if prev is not None else ""
            if prev is not None and d.status in RETRYING:
                bad_status, bad_since = prev.bad_status, prev.bad_since
        state = ObjectState(
            cluster=cl.name,
            derived=d,
            since=since,
            failing_since=failing_since,
            failure_reason=failure_reason,
            bad_status=bad_status,
            bad_since=bad_since,
        )
        if prev is not None:
            state.wanted_revision = prev.wanted_revision
            state.drift_since = prev.drift_since
        return state

    def _refresh(self, cl: ClusterData, state: ObjectState, now: float) -> bool:
        """Recompute what depends on neighbours; True when it changed."""
        d = state.derived
        before = (state.root, state.wanted_revision)
        state.root = find_root(state.for_root_cause(), cl.root_lookup)
        wanted = wanted_revision(d, cl.lookup)
        if wanted and not state.wanted_revision:
            first_sight = state.drift_since is None and d.status in _BAD and d.since is not None
            state.drift_since = d.since if first_sight else now
        elif not wanted:
            state.drift_since = None
        state.wanted_revision = wanted
        return (state.root, state.wanted_revision) != before

    def _link(self, cl: ClusterData, d: Derived, add: bool) -> None:
        for ref in (*d.upstream, *d.depends_on):
            if add:
                cl.dependents.setdefault(ref, set()).add(d.key)
            else:
                deps = cl.dependents.get(ref)
                if deps is not None:
                    deps.discard(d.key)
                    if not deps:
                        del cl.dependents[ref]

    def _included(self, state: ObjectState) -> bool:
        if self.per_object == "all":
            return True
        if self.per_object == "none":
            return False
        return state.derived.status != "ready"

    def _render(self, cl: ClusterData, kd: KindData, state: ObjectState) -> None:
        uid = state.derived.uid
        if not self._included(state):
            kd.drop(uid)
            return
        notes: list[str] = []
        kd.set_lines(uid, render_object(state, self.families, notes))
        if notes:
            self._problems(cl, state.derived, notes)

    def _propagate(self, cl: ClusterData, keys: Iterable[ObjKey], now: float) -> None:
        """Re-render objects pointing (transitively) at changed ones."""
        queue = list(keys)
        seen = set(queue)
        while queue:
            key = queue.pop()
            for dep_key in cl.dependents.get(key, ()):
                if dep_key in seen:
                    continue
                seen.add(dep_key)
                state = cl.index.get(dep_key)
                if state is None:
                    continue
                if self._refresh(cl, state, now):
                    kd = cl.kinds.get(dep_key[0])
                    if kd is not None and kd.states.get(state.derived.uid) is state:
                        self._render(cl, kd, state)
                    queue.append(dep_key)

    def _replace(self, cluster: str, kind: str, objects: Sequence[FluxObject]) -> None:
        cl = self._cluster(cluster)
        relist = kind in cl.kinds and cl.state is not None and cl.state.synced
        old = cl.kinds.get(kind) or cl.new_kind()
        new = cl.new_kind()
        now = self.clock()
        derived: dict[str, Derived] = {}
        for obj in objects:
            d = self._derive(cl, kind, obj)
            if d is not None:
                derived[d.uid] = d  # a duplicate uid in one list: the later copy wins
        for state in old.states.values():
            self._link(cl, state.derived, add=False)
            if cl.index.get(state.derived.key) is state:
                del cl.index[state.derived.key]
        for uid, d in derived.items():
            state = self._new_state(cl, d, old.states.get(uid), now)
            new.states[uid] = state
            cl.index[d.key] = state
            self._link(cl, d, add=True)
        changed: list[ObjKey] = []
        for uid, state in new.states.items():
            prev = old.states.get(uid)
            self._refresh(cl, state, now)
            observe_source(cl, state.derived, now, self.aggregates)
            if prev is not None:
                self._transitions(cl, prev, state, now)
            elif relist:
                self._new_and_broken(cl, state)
            self._render(cl, new, state)
            new.count(state.derived.status, 1)
            if _summary(prev) != _summary(state):
                changed.append(state.derived.key)
        for uid, state in old.states.items():
            if uid not in new.states:
                changed.append(state.derived.key)
                cl.logged.discard(uid)
                if state.derived.kind in SOURCE_KINDS and state.derived.key not in cl.index:
                    cl.revisions.forget(state.derived.key)
                    cl.pending.pop(state.derived.key, None)
        cl.kinds[kind] = new  # the swap: scrapes see the old set or this one, nothing between
        cl.chunks[:] = [None] * len(cl.chunks)
        self._propagate(cl, changed, now)

    def _upsert(self, cluster: str, kind: str, obj: FluxObject) -> None:
        cl = self._cluster(cluster)
        d = self._derive(cl, kind, obj)
        if d is None:
            return
        kd = self._kind(cl, kind)
        now = self.clock()
        prev = kd.states.get(d.uid)
        state = self._new_state(cl, d, prev, now)
        if prev is not None:
            self._link(cl, prev.derived, add=False)
            if cl.index.get(prev.derived.key) is prev:
                del cl.index[prev.derived.key]
            kd.count(prev.derived.status, -1)
        self._link(cl, d, add=True)
        cl.index[d.key] = state
        kd.states[d.uid] = state
        kd.count(d.status, 1)
        self._refresh(cl, state, now)
        observe_source(cl, d, now, self.aggregates)
        if prev is not None:
            self._transitions(cl, prev, state, now)
        elif cl.state is not None and cl.state.synced:
            self._new_and_broken(cl, state)
        self._render(cl, kd, state)
        if _summary(prev) != _summary(state):
            self._propagate(cl, [d.key], now)

    def _delete(self, cluster: str, kind: str, obj: FluxObject) -> None:
        cl = self.clusters.get(cluster)
        kd = cl.kinds.get(kind) if cl is not None else None
        if cl is None or kd is None:
            return
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        if not isinstance(meta, Mapping):
            self._count(cluster, kind, "undecodable")
            return
        uid = meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        state = kd.states.pop(str(uid), None)
        if state is None:
            return
        kd.drop(state.derived.uid)
        kd.count(state.derived.status, -1)
        self._link(cl, state.derived, add=False)
        key = state.derived.key
        if cl.index.get(key) is state:
            del cl.index[key]
        cl.logged.discard(state.derived.uid)
        if kind in SOURCE_KINDS:
            cl.revisions.forget(key)
            cl.pending.pop(key, None)
        self._propagate(cl, [key], self.clock())

    # Transitions ----------------------------------------------------------------------------

    def _transitions(
        self, cl: ClusterData, prev: ObjectState, new: ObjectState, now: float
    ) -> None:
        p = prev.derived
        for kind, latency in detect(cl, prev, new, now, self.aggregates):
            self._publish(self._transition(cl, kind, new, p.status, latency, p.applied_revision))

    def _new_and_broken(self, cl: ClusterData, state: ObjectState) -> None:
        """An object created after the first sync and broken from the start (an app that never
        deploys) is news; objects in a cluster's first list are not."""
        status = state.derived.status
        if status in _BAD:
            kind: TransitionType = "stalled" if status == "stalled" else "failing"
            self._publish(self._transition(cl, kind, state, "", None))

    def _transition(
        self,
        cl: ClusterData,
        kind: TransitionType,
        state: ObjectState,
        previous_status: str,
        latency: float | None,
        previous_revision: str = "",
    ) -> Transition:
        return build_transition(
            cl.name, kind, state, previous_status, latency, previous_revision, self.clock()
        )

    def _publish(self, transition: Transition) -> None:
        if self.publisher is not None:
            self.publisher.offer(transition)
