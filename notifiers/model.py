"""The bridge's data model: normalised events, notifications and delivery outcomes.

Every intake path (Flux events, Alertmanager alerts, exporter transitions) becomes one
``Event``; routing, de-duplication and providers only ever see that type, so a new source is one
parser and a new destination is one provider. ``raw`` keeps the payload as received, unknown
fields included, because the issue asks that nothing a sender adds is lost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

Source = Literal["flux", "alertmanager", "transition", "rollout"]

# Statuses the de-duplicator reasons about; a superset of the exporter's object statuses.
Status = Literal[
    "failing",
    "ready",
    "stalled",
    "progressing",
    "suspended",
    "unknown",
    "unreachable",
    "reachable",
    "firing",
    "resolved",
]

BAD_STATUSES = frozenset({"failing", "stalled", "unreachable", "firing"})


class RootCauseDict(TypedDict):
    kind: str
    namespace: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Event:
    """One normalised event; ``as_dict`` is what is stored and what providers render."""

    id: str
    source: Source
    type: str  # transition type, "event" for Flux events, "alert" for Alertmanager alerts
    cluster: str
    kind: str
    namespace: str
    name: str
    status: str
    severity: str
    reason: str
    message: str
    received_at: float
    occurred_at: float
    uid: str = ""
    revision: str = ""
    previous_revision: str = ""
    previous_status: str = ""
    tenant: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    root_cause: RootCauseDict | None = None
    latency_seconds: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    # The exact bytes received when the whole body is this one event: stored as they are,
    # which keeps unknown fields and key order and saves re-encoding ``raw``.
    raw_body: bytes = field(default=b"", repr=False, compare=False)

    @property
    def object_key(self) -> str:
        """Identity of the object for ordering and de-duplication (cluster-qualified)."""
        return f"{self.cluster}/{self.kind}/{self.namespace}/{self.name}"

    @property
    def root_key(self) -> str:
        """The object a failure starts from: the root cause if named, else the object itself."""
        rc = self.root_cause
        if rc is not None and rc.get("name"):
            return f"{self.cluster}/{rc['kind']}/{rc['namespace']}/{rc['name']}"
        return self.object_key

    @property
    def commit(self) -> str:
        return commit_sha(self.metadata.get("commit") or self.metadata.get("originRevision") or "")

    def as_dict(self) -> dict[str, Any]:
        return {**self.fields(), "raw": dict(self.raw)}

    def fields(self) -> dict[str, Any]:
        """Everything but ``raw``: what notifications carry and providers render."""
        return {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "cluster": self.cluster,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "status": self.status,
            "previous_status": self.previous_status,
            "severity": self.severity,
            "reason": self.reason,
            "message": self.message,
            "revision": self.revision,
            "previous_revision": self.previous_revision,
            "commit": self.commit or commit_sha(self.revision),
            "tenant": self.tenant,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "metadata": dict(self.metadata),
            "root_cause": dict(self.root_cause) if self.root_cause else None,
            "latency_seconds": self.latency_seconds,
            "received_at": self.received_at,
            "occurred_at": self.occurred_at,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Event:
        rc = data.get("root_cause")
        return Event(
            id=str(data["id"]),
            source=data["source"],
            type=str(data["type"]),
            cluster=str(data["cluster"]),
            kind=str(data["kind"]),
            namespace=str(data["namespace"]),
            name=str(data["name"]),
            status=str(data["status"]),
            severity=str(data["severity"]),
            reason=str(data["reason"]),
            message=str(data["message"]),
            received_at=float(data["received_at"]),
            occurred_at=float(data["occurred_at"]),
            uid=str(data.get("uid", "")),
            revision=str(data.get("revision", "")),
            previous_revision=str(data.get("previous_revision", "")),
            previous_status=str(data.get("previous_status", "")),
            tenant=str(data.get("tenant", "")),
            labels=dict(data.get("labels") or {}),
            annotations=dict(data.get("annotations") or {}),
            metadata=dict(data.get("metadata") or {}),
            root_cause=RootCauseDict(
                kind=str(rc.get("kind", "")),
                namespace=str(rc.get("namespace", "")),
                name=str(rc.get("name", "")),
                reason=str(rc.get("reason", "")),
            )
            if isinstance(rc, Mapping)
            else None,
            latency_seconds=data.get("latency_seconds"),
            raw=dict(data.get("raw") or {}),
        )


_HEX = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")


def commit_sha(revision: str) -> str:
    """The commit SHA inside a Flux revision string, or "" when it names no commit.

    Formats (flux-api.md §3): ``<ref>@sha1:<40hex>``, ``<ref>@sha256:<64hex>`` for SHA-256 Git
    repositories, pre-v2 ``<branch>/<sha>``, a bare SHA, and OCI origin revisions such as
    ``6.1.8/<sha>``. Digests of OCI artifacts (``sha256:`` without ``@`` in a Git ref) and chart
    versions are not commits, so they give "".
    """
    rev = revision.strip()
    if not rev:
        return ""
    if "@sha1:" in rev or "@sha256:" in rev:
        candidate = rev.rsplit(":", 1)[1].lower()
        # OCIRepository revisions are <tag>@sha256:<digest>: a 64-hex digest is ambiguous, so
        # only accept sha1 or a Git-style sha256 that came with a ref.
        return candidate if _HEX.match(candidate) else ""
    if rev.startswith("sha1:"):
        candidate = rev[5:].lower()
        return candidate if _HEX.match(candidate) else ""
    if "/" in rev:
        candidate = rev.rsplit("/", 1)[1].lower()
        return candidate if len(candidate) == 40 and _HEX.match(candidate) else ""
    low = rev.lower()
    return low if len(low) == 40 and _HEX.match(low) else ""


@dataclass(frozen=True, slots=True)
class Notification:
    """What one destination receives: one event or a group of them, with a stable key.

    ``idempotency_key`` is derived from the destination and the member event ids, so a re-send
    after a crash carries the same key and a destination that honours it applies it once.
    """

    id: int
    destination: str
    group_key: str
    idempotency_key: str
    created_at: float
    events: Sequence[Mapping[str, Any]]  # Event.as_dict() without "raw", at most the cap
    total_events: int
    object_keys: frozenset[str]
    attempts: int = 0
    next_attempt_at: float = 0.0
    status: str = "pending"
    clusters: tuple[str, ...] = ()  # every member's cluster, also beyond the listed events
    retry_since: float | None = None  # set by a replay: the retry policy's age counts from here

    @property
    def retry_age_from(self) -> float:
        """Where ``max_age`` is measured from: creation, or the operator's last replay."""
        return self.created_at if self.retry_since is None else self.retry_since

    @property
    def summary(self) -> dict[str, Any]:
        return summarise(self.events, self.total_events, self.clusters, self.object_keys)


def idempotency_key(destination: str, event_ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(destination.encode())
    for event_id in sorted(event_ids):
        digest.update(b"\0")
        digest.update(event_id.encode())
    return "fw_" + digest.hexdigest()[:32]


def summarise(
    events: Sequence[Mapping[str, Any]],
    total: int,
    all_clusters: Sequence[str] = (),
    object_keys: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """A deterministic summary of a group: what the grouped notification headlines."""
    clusters = sorted(set(all_clusters) | {str(e.get("cluster", "")) for e in events})
    statuses = sorted({str(e.get("status", "")) for e in events})
    first = events[0] if events else {}
    rc = first.get("root_cause") if first else None
    root: dict[str, Any] | None = None
    if isinstance(rc, Mapping) and rc.get("name"):
        root = {
            "kind": rc.get("kind", ""),
            "namespace": rc.get("namespace", ""),
            "name": rc.get("name", ""),
            "reason": rc.get("reason", ""),
        }
    members = set(object_keys) | {
        f"{e.get('cluster')}/{e.get('kind')}/{e.get('namespace')}/{e.get('name')}" for e in events
    }
    suffix = f"/{root['kind']}/{root['namespace']}/{root['name']}" if root else ""
    dependents = sorted(k for k in members if root is not None and not k.endswith(suffix))
    return {
        "count": total,
        "listed": len(events),
        "clusters": clusters,
        "statuses": statuses,
        "root_cause": root,
        "dependents": dependents,
    }


# ---- delivery outcomes ("may I retry?" travels with the result) ----


@dataclass(frozen=True, slots=True)
class ThreadAnchor:
    """Where an incident's chat thread lives (Slack: channel ID and the parent's ``ts``).

    Providers return it with ``Ok`` and the outbox stores it in the same transaction that marks
    the notification delivered, so after a crash the next notification of the incident replies
    in the same thread. ``state`` is JSON the provider keeps about the parent (what it shows,
    since when); ``closed`` once the incident is over: the next failure opens a new thread.
    """

    destination: str
    incident: str
    channel: str
    ts: str
    opened_at: float
    state: str = "{}"
    closed: bool = False


@dataclass(frozen=True, slots=True)
class Ok:
    detail: str = ""
    anchor: ThreadAnchor | None = None  # written durably with the delivery's completion


@dataclass(frozen=True, slots=True)
class Retry:
    reason: str
    after: float | None = None  # seconds the destination asked us to wait (Retry-After)
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    reason: str
    status_code: int | None = None


Outcome = Ok | Retry | Fail
