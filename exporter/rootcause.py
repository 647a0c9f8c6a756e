"""Root cause and revision drift: decisions that need an object's neighbours.

Both are pure over a ``lookup`` of derived objects in the same cluster, so they are table-tested
without a store. A broken GitRepository with twenty blocked Kustomizations is one problem: each
Kustomization's status series names the GitRepository as its root, so ``count by (root_name)``
shows one root with twenty dependents instead of twenty-one alerts.
"""

from __future__ import annotations

from collections.abc import Callable

from catalogue.exporter import APPLIER_KINDS
from exporter.kinds import REVISION_SOURCES
from exporter.status import Derived, ObjKey, revision_matches
from exporter.transitions import RootCause

Lookup = Callable[[ObjKey], Derived | None]

MAX_DEPTH = 16  # longer chains are configuration mistakes (or cycles); stop and blame the last

_BROKEN_SOURCE = frozenset({"failing", "stalled"})
_DEPENDENCY_REASONS = frozenset({"DependencyNotReady"})


def _next_upstream(current: Derived, lookup: Lookup) -> Derived | None:
    """The neighbour that explains why ``current`` is not ready, if any.

    A DependencyNotReady object is blocked by whichever dependsOn entry is not ready (any status,
    a progressing dependency blocks too); otherwise a source or chart that is failing or stalled
    explains it. A suspended or progressing source still serves its last artifact, so it does not.
    """
    if current.reason in _DEPENDENCY_REASONS:
        for ref in current.depends_on:
            dep = lookup(ref)
            if dep is not None and dep.status != "ready":
                return dep
    for ref in current.upstream:
        src = lookup(ref)
        if src is not None and src.status in _BROKEN_SOURCE:
            return src
    return None


def find_root(start: Derived, lookup: Lookup) -> RootCause | None:
    """The first object up the chain failing for its own reason; None for ready objects."""
    if start.status == "ready":
        return None
    current = start
    seen = {start.key}
    for _ in range(MAX_DEPTH):
        nxt = _next_upstream(current, lookup)
        if nxt is None or nxt.key in seen:
            break
        seen.add(nxt.key)
        current = nxt
    return RootCause(current.kind, current.namespace, current.name, current.reason)


def wanted_revision(d: Derived, lookup: Lookup) -> str:
    """The revision an applier attempts, or its source offers, that it has not applied ("" if none).

    Only Kustomization and HelmRelease apply revisions. Attempted-but-not-applied is the failing
    new commit that ``gotk_resource_info``'s revision label hides.
    """
    if d.kind not in APPLIER_KINDS:
        return ""
    applied = d.applied_revision
    if d.attempted_revision and d.attempted_revision != applied:
        return d.attempted_revision
    for ref in d.upstream:
        if ref[0] not in REVISION_SOURCES:
            continue
        src = lookup(ref)
        if src is None or not src.offered_revision:
            continue
        if not revision_matches(src.offered_revision, applied):
            return src.offered_revision
        break
    return ""
