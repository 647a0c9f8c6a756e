"""Fleet rollouts: pure decisions over what every exporter reported (the clock is an argument).

A rollout is one source revision of one object identity (kind/namespace/name, e.g.
``Kustomization flux-system/apps``) across every cluster that runs that object. Exporters
(possibly several shards) report, per cluster, each applier object's applied, attempted and
wanted revisions and its status; from those rows alone this module decides

- when a new rollout starts (a revision some cluster wants or attempts that has no rollout yet)
  and that it supersedes the previous one of the same object;
- per cluster whether the rollout is applied, still pending (an older revision) or failing;
- the fleet verdict: ``pending`` "applied on 212/500 clusters", ``success`` when every cluster
  running the object applied it (and every exporter shard has reported a complete sync), or
  ``failure`` once a configured count or share of clusters fails on it.

Storage is ``notifiers.rolloutstore``; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from notifiers.model import commit_sha

Verdict = Literal["applied", "pending", "failing"]
FleetState = Literal["pending", "success", "failure"]
Identity = tuple[str, str, str]  # (kind, namespace, name)

_FAILING = frozenset({"failing", "stalled"})
MAX_NAMED_CLUSTERS = 3  # failing clusters named in a status description


@dataclass(frozen=True, slots=True)
class ClusterObject:
    """One applier object in one cluster, as its exporter last reported it."""

    cluster: str
    kind: str
    namespace: str
    name: str
    applied: str = ""
    attempted: str = ""
    wanted: str = ""
    status: str = "unknown"
    reason: str = ""
    message: str = ""
    applied_at: float | None = None
    source_url: str = ""
    observed_at: float = 0.0  # when the bridge stored this report
    # OCI: the Git revision the artifact of ``origin_of`` (a revision) was built from
    origin_revision: str = ""
    origin_of: str = ""

    @property
    def identity(self) -> Identity:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class Rollout:
    id: int
    kind: str
    namespace: str
    name: str
    revision: str
    started_at: float
    source_url: str = ""
    superseded_at: float | None = None
    success_at: float | None = None  # first time every cluster had applied it
    summary: Mapping[str, Any] = field(default_factory=dict)  # the tally when superseded

    @property
    def identity(self) -> Identity:
        return (self.kind, self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class FailPolicy:
    """When the fleet status turns to failure: ``count`` clusters, or ``share`` of them."""

    count: int = 1
    share: float = 0.0  # 0: only the count applies


@dataclass(frozen=True, slots=True)
class ClusterProgress:
    cluster: str
    verdict: Verdict
    applied_at: float | None = None
    reason: str = ""
    message: str = ""
    current: str = ""  # the revision the cluster runs now


@dataclass(frozen=True, slots=True)
class Tally:
    revision: str
    total: int
    applied: int
    pending: int
    failing: int
    clusters: tuple[ClusterProgress, ...]  # sorted by cluster name
    complete: bool  # every exporter shard has reported a full sync
    commit: str = ""  # the Git commit the revision is, or was built from; "" when unknown

    def failing_clusters(self) -> list[ClusterProgress]:
        return [c for c in self.clusters if c.verdict == "failing"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "total": self.total,
            "applied": self.applied,
            "pending": self.pending,
            "failing": self.failing,
            "complete": self.complete,
            "failing_clusters": [
                {"cluster": c.cluster, "reason": c.reason} for c in self.failing_clusters()
            ],
        }


def cluster_verdict(obj: ClusterObject, revision: str) -> Verdict:
    """Whether ``obj``'s cluster has applied ``revision``, fails on it, or is still before it."""
    if obj.status in _FAILING and revision in (obj.applied, obj.attempted, obj.wanted):
        return "failing"
    if obj.applied == revision:
        return "applied"
    return "pending"


def rollout_commit(revision: str, source_url: str, origins: Iterable[str]) -> str:
    """The Git commit a rollout's revision stands for, or "" (pure).

    An OCI revision (``<tag>@sha256:<digest>``) names an artifact, not a commit: its commit is
    the first origin revision the clusters recorded that names one. Without one, a revision of
    an ``oci://`` source names no commit, even when its digest looks like a SHA-256 commit.
    """
    for origin in origins:
        sha = commit_sha(origin)
        if sha:
            return sha
    if source_url.startswith("oci://"):
        return ""
    return commit_sha(revision)


def tally(rollout: Rollout, objects: Iterable[ClusterObject], complete: bool) -> Tally:
    """Count every cluster running the rollout's object (pure)."""
    progress: list[ClusterProgress] = []
    origins: list[str] = []
    for obj in sorted(objects, key=lambda o: o.cluster):
        if obj.identity != rollout.identity:
            continue
        if obj.origin_revision and obj.origin_of == rollout.revision:
            origins.append(obj.origin_revision)
        verdict = cluster_verdict(obj, rollout.revision)
        applied_at = None
        if verdict == "applied":
            applied_at = obj.applied_at if obj.applied_at is not None else obj.observed_at
        progress.append(
            ClusterProgress(
                cluster=obj.cluster,
                verdict=verdict,
                applied_at=applied_at,
                reason=obj.reason if verdict == "failing" else "",
                message=obj.message if verdict == "failing" else "",
                current=obj.applied,
            )
        )
    progress.sort(key=lambda p: p.cluster)
    counts = {"applied": 0, "pending": 0, "failing": 0}
    for p in progress:
        counts[p.verdict] += 1
    return Tally(
        revision=rollout.revision,
        total=len(progress),
        applied=counts["applied"],
        pending=counts["pending"],
        failing=counts["failing"],
        clusters=tuple(progress),
        complete=complete,
        commit=rollout_commit(rollout.revision, rollout.source_url, origins),
    )


def _named(clusters: Sequence[ClusterProgress]) -> str:
    names = ", ".join(c.cluster for c in clusters[:MAX_NAMED_CLUSTERS])
    more = len(clusters) - MAX_NAMED_CLUSTERS
    return names + (f" and {more} more" if more > 0 else "")


def fleet_state(t: Tally, policy: FailPolicy) -> tuple[FleetState, str]:
    """The fleet-wide commit status and its description (pure, deterministic)."""
    if (
        t.total
        and t.failing
        and (
            t.failing >= policy.count or (policy.share > 0 and t.failing / t.total >= policy.share)
        )
    ):
        return (
            "failure",
            f"failed on {t.failing}/{t.total} clusters: {_named(t.failing_clusters())}; "
            f"applied on {t.applied}/{t.total}",
        )
    if t.total and t.applied == t.total and t.complete:
        return "success", f"applied on {t.applied}/{t.total} clusters"
    text = f"applied on {t.applied}/{t.total} clusters"
    if t.failing:
        text += f", {t.failing} failing"
    if not t.complete:
        text += " (waiting for every exporter shard)"
    return "pending", text


def _took(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def fleet_chat_line(
    rollout: Rollout, t: Tally, policy: FailPolicy, finished_at: float | None
) -> tuple[FleetState, str]:
    """The one line a chat message about a fleet rollout shows (pure, deterministic).

    "Kustomization flux-system/apps rev abc1234: applied on 212/500 clusters, 3 failing (c03,
    c11, c27)", then "... rolled out to 500/500 in 14m" (``finished_at``: when it was applied
    everywhere). No clock: the same state always gives the same line, so a restart or a repeated
    report never edits the message for nothing.
    """
    state, _ = fleet_state(t, policy)
    rev = t.commit[:7] if t.commit else rollout.revision
    head = f"{rollout.kind} {rollout.namespace}/{rollout.name} rev {rev}: "
    if state == "success":
        took = _took((finished_at or rollout.started_at) - rollout.started_at)
        return state, head + f"rolled out to {t.applied}/{t.total} in {took}"
    text = f"applied on {t.applied}/{t.total} clusters"
    if t.failing:
        text += f", {t.failing} failing ({_named(t.failing_clusters())})"
    if state == "pending" and not t.complete:
        text += " (waiting for every exporter shard)"
    return state, head + text


def slowest(t: Tally, started_at: float, now: float, limit: int = 3) -> list[tuple[str, float]]:
    """The clusters that took (or are taking) longest: pending ones first, oldest wait."""
    waiting = [(c.cluster, now - started_at) for c in t.clusters if c.verdict != "applied"]
    done = sorted(
        (
            (c.cluster, max((c.applied_at or started_at) - started_at, 0.0))
            for c in t.clusters
            if c.verdict == "applied"
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return (waiting + done)[:limit]


def revisions_to_start(
    objects: Iterable[ClusterObject], known: Iterable[str], has_rollout: bool
) -> list[str]:
    """Revisions that begin a rollout, oldest first (the last one becomes the current one).

    A revision some cluster wants or attempts and that has no rollout yet starts one. A
    revision only ever seen as applied starts one only when the object has no rollout at all
    (the first report after the bridge starts): a straggler still running an old revision must
    not bring a finished rollout back.
    """
    seen = set(known)
    applied_only: set[str] = set()
    moving: set[str] = set()
    for obj in objects:
        for revision in (obj.wanted, obj.attempted):
            if revision and revision != obj.applied and revision not in seen:
                moving.add(revision)
        if obj.applied and obj.applied not in seen:
            applied_only.add(obj.applied)
    applied_only -= moving
    start = sorted(applied_only) if not has_rollout else []
    return start + sorted(moving)


def prunable(
    rollouts: Iterable[Rollout], current_ids: set[int], now: float, retention: float
) -> list[int]:
    """Finished rollouts past the retention: superseded, or done and no longer current."""
    out: list[int] = []
    for r in rollouts:
        if r.id in current_ids:
            continue
        ended = r.superseded_at if r.superseded_at is not None else r.success_at
        if ended is None or now - ended >= retention:
            out.append(r.id)
    return out


def parse_object(doc: Any, cluster: str, observed_at: float, where: str) -> ClusterObject:
    """One object of an exporter rollout report; ValueError names where the bad field was."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"{where}: expected an object")

    def text(key: str, *, required: bool = False) -> str:
        value = doc.get(key)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ValueError(f"{where}.{key}: expected a string")
        if required and not value:
            raise ValueError(f"{where}.{key}: required")
        return value

    applied_at = doc.get("applied_at")
    if applied_at is not None and (
        isinstance(applied_at, bool) or not isinstance(applied_at, int | float)
    ):
        raise ValueError(f"{where}.applied_at: expected a number or null")
    return ClusterObject(
        cluster=cluster,
        kind=text("kind", required=True),
        namespace=text("namespace"),
        name=text("name", required=True),
        applied=text("applied"),
        attempted=text("attempted"),
        wanted=text("wanted"),
        status=text("status") or "unknown",
        reason=text("reason"),
        message=text("message")[:1000],
        applied_at=float(applied_at) if applied_at is not None else None,
        source_url=text("source_url"),
        observed_at=observed_at,
        origin_revision=text("origin_revision")[:1000],
        origin_of=text("origin_of"),
    )
