"""The contract between the watch layer (``exporter.kube``) and the metric store.

The watch layer knows Kubernetes (clients, discovery, list/watch, backoff); the store knows
metrics. The watch layer only ever calls these methods, so it never imports the families, and the
store can be driven without a cluster in tests. All calls happen on the one event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

FluxObject = Mapping[str, Any]
"""A raw object as the API returns it (decoded JSON); sinks keep derived fields, not objects."""


@dataclass(frozen=True, slots=True)
class ClusterState:
    """What the watch layer knows about one cluster's API, reported on every change."""

    reachable: bool
    synced: bool  # every served kind finished its initial list at least once
    last_full_sync: float | None = None  # unix time the last complete list of all kinds ended
    served: Mapping[str, str] = field(default_factory=dict)  # kind -> apiVersion in use
    error: str = ""  # last connection or API error, for the status page; no secrets
    auth_failed: bool = False  # the API server rejects our credentials (401/403)


class FluxObjectSink(Protocol):
    def replace(self, cluster: str, kind: str, objects: Sequence[FluxObject]) -> None:
        """A complete list of one kind in one cluster; swaps the whole set in atomically."""

    def upsert(self, cluster: str, kind: str, obj: FluxObject) -> None:
        """ADDED or MODIFIED from a watch."""

    def delete(self, cluster: str, kind: str, obj: FluxObject) -> None:
        """DELETED from a watch."""

    def cluster_changed(self, cluster: str, state: ClusterState) -> None:
        """Reachability, sync progress or served versions changed."""

    def forget_cluster(self, cluster: str) -> None:
        """The cluster left the configuration (kubeconfig removed, shard moved)."""
