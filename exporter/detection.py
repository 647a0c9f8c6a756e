"""What an object's change means for its owners: transitions worth telling, and their figures.

From an object's previous and new state it finds the transitions (failing, stalled, recovered,
suspended, resumed, revision applied), counts them, and measures time to recover and
commit-to-applied latency: from the source revision's first appearance to its application, kept
pending when the applier's event arrives before its source's. Building the ``Transition`` is
pure; the store publishes it.
"""

from __future__ import annotations

from catalogue import exporter as c
from exporter.clusterdata import MAX_PENDING_PER_SOURCE, ClusterData, PendingApply
from exporter.families import ObjectState
from exporter.history import Aggregates
from exporter.kinds import REVISION_SOURCES, SOURCE_KINDS
from exporter.status import Derived, revision_matches
from exporter.transitions import Transition, TransitionType

APPLIER_KINDS = frozenset(c.APPLIER_KINDS)


def detect(
    cl: ClusterData, prev: ObjectState, new: ObjectState, now: float, aggregates: Aggregates
) -> list[tuple[TransitionType, float | None]]:
    """The transitions from ``prev`` to ``new`` with their latency (for an applied revision),
    counted and measured in ``aggregates`` on the way."""
    p, d = prev.derived, new.derived
    found: list[tuple[TransitionType, float | None]] = []
    if p.status != d.status:
        aggregates.inc(c.TRANSITIONS.name, (cl.name, d.kind, d.tenant, p.status, d.status))
        if d.status == "stalled":
            found.append(("stalled", None))
        elif d.status == "failing" and prev.failing_since is None:
            found.append(("failing", None))
        elif d.status == "ready" and prev.failing_since is not None:
            recovered_at = d.since if d.since is not None else now
            aggregates.observe(
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
        aggregates.inc(c.REVISIONS_APPLIED.name, labels)
        latency = _latency(cl, d, now)
        if latency is not None:
            aggregates.observe(c.APPLY_LATENCY.name, c.APPLY_LATENCY.buckets, labels, latency)
        else:
            _defer_latency(cl, d, labels, now)
        found.append(("revision_applied", latency))
    return found


def build_transition(
    cluster: str,
    kind: TransitionType,
    state: ObjectState,
    previous_status: str,
    latency: float | None,
    previous_revision: str,
    timestamp: float,
) -> Transition:
    d = state.derived
    applied = d.applied_revision
    return Transition(
        type=kind,
        cluster=cluster,
        timestamp=timestamp,
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


def observe_source(cl: ClusterData, d: Derived, now: float, aggregates: Aggregates) -> None:
    """Remember when a source first offered a revision; applies that were waiting for it get
    their commit-to-applied latency now."""
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
            aggregates.observe(
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


def _defer_latency(cl: ClusterData, d: Derived, labels: tuple[str, str, str], now: float) -> None:
    """The source has not shown this revision yet: observe when it does."""
    applied_at = d.applied_at if d.applied_at is not None else now
    for ref in d.upstream:
        if ref[0] in REVISION_SOURCES:
            pending = cl.pending.setdefault(ref, [])
            pending.append(PendingApply(d.applied_revision, applied_at, labels))
            del pending[:-MAX_PENDING_PER_SOURCE]
            return


def _latency(cl: ClusterData, d: Derived, now: float) -> float | None:
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
