"""The metric store: the ``FluxObjectSink`` the watch layer feeds, holding pre-rendered lines.

Per (cluster, kind) it keeps the derived state of each object and, per metric family, a column
``uid -> bytes`` of that object's exposition lines, re-rendered only on that object's watch event
(or when a neighbour it points at changes status, since root cause and drift depend on it). A
scrape joins the columns. ``replace`` builds a whole new ``KindData`` and swaps one reference, so a
scrape sees the old complete set or the new one, never a half-filled one.

Everything here runs on the one event loop and never awaits, so no lock is needed; and nothing
raises into the watch layer: a bad object is counted and logged once, never fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from types import MappingProxyType
from typing import Any

from catalogue import exporter as c
from exporter.families import Family, ObjectState, families_for, render_object
from exporter.families._common import RETRYING
from exporter.history import Aggregates, RevisionMemory
from exporter.kinds import REVISION_SOURCES, SOURCE_KINDS
from exporter.publisher import TransitionPublisher
from exporter.rootcause import find_root, wanted_revision
from exporter.selfmetrics import SelfMetrics
from exporter.sink import ClusterState, FluxObject
from exporter.status import QUIET_PROBLEMS, Derived, ObjKey, derive, revision_matches
from exporter.transitions import Transition, TransitionType

log = logging.getLogger(__name__)

APPLIER_KINDS = frozenset(c.APPLIER_KINDS)
_NO_LINES: Mapping[str, bytes] = MappingProxyType({})  # a family with no line in this kind
_BAD = frozenset({"failing", "stalled"})


class KindData:
    """One kind in one cluster. Replaced wholesale on relist; mutated in place on events.

    Every line change marks the family's joined chunk of the owning cluster stale, so a scrape
    re-joins only the clusters that had events since the last scrape.
    """

    __slots__ = ("_stale", "columns", "counts", "counts_text", "states")

    def __init__(self, n_families: int, stale: list[bytes | None]) -> None:
        self.states: dict[str, ObjectState] = {}
        # Most families apply to a few kinds only: a column gets its own dict on its first
        # line (25 empty dicts per kind are 9 MiB over the 7,000 kinds of a 500-cluster fleet).
        self.columns: list[Mapping[str, bytes]] = [_NO_LINES] * n_families
        self._stale = stale  # the owning cluster's chunk cache
        self.counts: dict[str, int] = dict.fromkeys(c.STATUSES, 0)
        self.counts_text: bytes | None = None  # rendered counts, cached by the exposition

    def set_lines(self, uid: str, lines: Sequence[bytes]) -> None:
        stale = self._stale
        columns = self.columns
        for i, (column, line) in enumerate(zip(columns, lines, strict=True)):
            old = column.get(uid)
            if line:
                if old != line:
                    if column is _NO_LINES:
                        column = columns[i] = {}
                    assert isinstance(column, dict)
                    column[uid] = line
                    stale[i] = None
            elif old is not None:
                assert isinstance(column, dict)
                del column[uid]
                stale[i] = None

    def drop(self, uid: str) -> None:
        for i, column in enumerate(self.columns):
            if uid in column:
                assert isinstance(column, dict)
                del column[uid]
                self._stale[i] = None

    def count(self, status: str, delta: int) -> None:
        self.counts[status] += delta
        self.counts_text = None


class ClusterData:
    __slots__ = (
        "chunks",
        "dependents",
        "index",
        "kinds",
        "logged",
        "name",
        "pending",
        "revisions",
        "state",
        "state_text",
    )

    def __init__(self, name: str, n_families: int) -> None:
        self.name = name
        self.kinds: dict[str, KindData] = {}
        self.chunks: list[bytes | None] = [None] * n_families  # joined lines per family
        self.index: dict[ObjKey, ObjectState] = {}  # (kind, namespace, name) -> state
        self.dependents: dict[ObjKey, set[ObjKey]] = {}  # upstream -> objects pointing at it
        self.revisions = RevisionMemory()
        # Applies seen before their source's new revision (the two kinds are separate watch
        # streams, so their events can arrive in either order): source -> pending applies.
        self.pending: dict[ObjKey, list[PendingApply]] = {}
        self.state: ClusterState | None = None
        self.state_text: dict[str, bytes] | None = None  # rendered state lines, cached
        self.logged: set[str] = set()  # uids already logged as malformed

    def new_kind(self) -> KindData:
        return KindData(len(self.chunks), self.chunks)

    def chunk(self, index: int) -> bytes:
        """Every line of family ``index`` in this cluster (cached until one changes)."""
        joined = self.chunks[index]
        if joined is None:
            joined = self.chunks[index] = b"".join(
                chain.from_iterable(kd.columns[index].values() for kd in self.kinds.values())
            )
        return joined

    def lookup(self, key: ObjKey) -> Derived | None:
        state = self.index.get(key)
        return None if state is None else state.derived

    def root_lookup(self, key: ObjKey) -> Derived | None:
        state = self.index.get(key)
        return None if state is None else state.for_root_cause()


@dataclass(frozen=True, slots=True)
class PendingApply:
    revision: str
    applied_at: float
    labels: tuple[str, str, str]  # cluster, kind, tenant


MAX_PENDING_PER_SOURCE = 32


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

    def _observe_source(self, cl: ClusterData, d: Derived, now: float) -> None:
        if d.kind not in SOURCE_KINDS or not d.offered_revision:
            return
        when = d.artifact_updated if d.artifact_updated is not None else now
        cl.revisions.seen(d.key, d.offered_revision, when)
        pending = cl.pending.get(d.key)
        if not pending:
            return
        first = cl.revisions.first_seen(d.key, d.offered_revision)
        keep = []
        for apply in pending:
            if first is not None and revision_matches(d.offered_revision, apply.revision):
                self.aggregates.observe(
                    c.APPLY_LATENCY.name,
                    c.APPLY_LATENCY.buckets,
                    apply.labels,
                    max(apply.applied_at - first, 0.0),
                )
            else:
                keep.append(apply)
        if keep:
            cl.pending[d.key] = keep
        else:
            del cl.pending[d.key]

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
            self._observe_source(cl, state.derived, now)
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
        self._observe_source(cl, d, now)
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
        p, d = prev.derived, new.derived
        found: list[tuple[TransitionType, float | None]] = []
        if p.status != d.status:
            self.aggregates.inc(c.TRANSITIONS.name, (cl.name, d.kind, d.tenant, p.status, d.status))
            if d.status == "stalled":
                found.append(("stalled", None))
            elif d.status == "failing" and prev.failing_since is None:
                found.append(("failing", None))
            elif d.status == "ready" and prev.failing_since is not None:
                recovered_at = d.since if d.since is not None else now
                self.aggregates.observe(
                    c.TIME_TO_RECOVER.name,
                    c.TIME_TO_RECOVER.buckets,
                    (cl.name, d.kind, d.tenant),
                    max(recovered_at - prev.failing_since, 0.0),
                )
                found.append(("recovered", None))
            if d.status == "suspended":
                found.append(("suspended", None))
            elif p.status == "suspended":
                found.append(("resumed", None))
        applied = d.applied_revision
        if d.kind in APPLIER_KINDS and applied and applied != p.applied_revision:
            labels = (cl.name, d.kind, d.tenant)
            self.aggregates.inc(c.REVISIONS_APPLIED.name, labels)
            latency = self._latency(cl, d, now)
            if latency is not None:
                self.aggregates.observe(
                    c.APPLY_LATENCY.name, c.APPLY_LATENCY.buckets, labels, latency
                )
            else:
                self._defer_latency(cl, d, labels, now)
            found.append(("revision_applied", latency))
        for kind, latency in found:
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
        d = state.derived
        applied = d.applied_revision
        return Transition(
            type=kind,
            cluster=cl.name,
            timestamp=self.clock(),
            kind=d.kind,
            namespace=d.namespace,
            name=d.name,
            uid=d.uid,
            status=d.status,
            previous_status=previous_status,
            reason=d.reason,
            message=d.message,
            revision=applied if kind == "revision_applied" else (d.attempted_revision or applied),
            previous_revision=previous_revision,
            tenant=d.tenant,
            labels=d.labels,
            annotations=d.annotations,
            root_cause=state.root,
            latency_seconds=latency,
        )

    def _defer_latency(
        self, cl: ClusterData, d: Derived, labels: tuple[str, str, str], now: float
    ) -> None:
        """The source has not shown this revision yet: observe when it does."""
        applied_at = d.applied_at if d.applied_at is not None else now
        for ref in d.upstream:
            if ref[0] in REVISION_SOURCES:
                pending = cl.pending.setdefault(ref, [])
                pending.append(PendingApply(d.applied_revision, applied_at, labels))
                del pending[:-MAX_PENDING_PER_SOURCE]
                return

    def _latency(self, cl: ClusterData, d: Derived, now: float) -> float | None:
        """Commit-to-applied: from the source revision's first appearance to its application."""
        applied_at = d.applied_at if d.applied_at is not None else now
        for ref in d.upstream:
            first = cl.revisions.first_seen(ref, d.applied_revision)
            if first is None:
                # The applier's event may arrive before its source's: use the source as it is.
                src = cl.lookup(ref)
                if (
                    src is not None
                    and src.artifact_updated is not None
                    and revision_matches(src.offered_revision, d.applied_revision)
                ):
                    first = src.artifact_updated
            if first is not None:
                return max(applied_at - first, 0.0)
        return None

    def _publish(self, transition: Transition) -> None:
        if self.publisher is not None:
            self.publisher.offer(transition)
