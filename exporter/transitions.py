"""Typed status transitions the exporter emits for the notification bridge.

The exporter does not import the bridge: it calls ``TransitionSink.publish`` and the CLI supplies
a sink that hands ``Transition.as_dict()`` to the bridge. The dict is plain JSON so the bridge
parses it like any other intake payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

TransitionType = Literal[
    "failing",  # became failing (Ready=False, not stalled)
    "recovered",  # ready again after failing or stalled
    "stalled",  # Stalled=True: Flux stopped retrying
    "revision_applied",  # a new revision was applied (Kustomization, HelmRelease)
    "suspended",
    "resumed",
    "cluster_unreachable",
    "cluster_reachable",
]


@dataclass(frozen=True, slots=True)
class RootCause:
    kind: str
    namespace: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    type: TransitionType
    cluster: str
    timestamp: float  # unix seconds when the exporter observed it
    kind: str = ""  # empty for cluster-level transitions
    namespace: str = ""
    name: str = ""
    uid: str = ""
    status: str = ""  # ready|failing|progressing|stalled|suspended|unknown
    previous_status: str = ""
    reason: str = ""
    message: str = ""
    revision: str = ""  # applied revision for revision_applied, else the attempted one
    previous_revision: str = ""
    tenant: str = ""  # toolkit.fluxcd.io/tenant label
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)  # only fluxwatch.io/* ones
    root_cause: RootCause | None = None  # the first failing object up the source/dependsOn chain
    latency_seconds: float | None = None  # commit-to-applied, for revision_applied

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "cluster": self.cluster,
            "timestamp": self.timestamp,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "status": self.status,
            "previous_status": self.previous_status,
            "reason": self.reason,
            "message": self.message,
            "revision": self.revision,
            "previous_revision": self.previous_revision,
            "tenant": self.tenant,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "root_cause": None,
            "latency_seconds": self.latency_seconds,
        }
        if self.root_cause is not None:
            rc = self.root_cause
            data["root_cause"] = {
                "kind": rc.kind,
                "namespace": rc.namespace,
                "name": rc.name,
                "reason": rc.reason,
            }
        return data


class TransitionSink(Protocol):
    async def publish(self, transition: Transition) -> None:
        """Must not block the watch loop for long; a bridge stores and returns."""
