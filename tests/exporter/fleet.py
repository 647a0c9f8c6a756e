"""A small but complete store: every kind, every status, transitions, histograms, cluster states."""

from __future__ import annotations

from typing import Any

from exporter.sink import ClusterState
from exporter.store import MetricStore
from tests.exporter import objects as o


class StepClock:
    def __init__(self, now: float = o.T0_UNIX + 7200) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _upgrade_failed() -> dict[str, Any]:
    obj = o.failing(o.helm_release("api", attempted="6.6.0"), "UpgradeFailed")
    obj["status"].update(failures=3, upgradeFailures=3, installFailures=0)
    obj["status"]["conditions"].append(o.cond("Drifted", "False", "NoDriftDetected"))
    return obj


def full_store(per_object: str = "all", compat_info: bool = True) -> MetricStore:
    store = MetricStore(per_object=per_object, compat_info=compat_info, clock=StepClock())
    old, new = f"main@sha1:{o.SHA_A}", f"main@sha1:{o.SHA_B}"
    for cluster in ("prod-eu", 'odd "name"\\x'):
        store.cluster_changed(
            cluster,
            ClusterState(
                reachable=True,
                synced=True,
                last_full_sync=o.T0_UNIX,
                served={
                    "GitRepository": "source.toolkit.fluxcd.io/v1",
                    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
                    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
                },
            ),
        )
        store.replace(cluster, "GitRepository", [o.git_repository(revision=old)])
        store.replace(
            cluster,
            "Kustomization",
            [
                o.kustomization(applied=old),
                o.kustomization("infra"),
                o.progressing(o.kustomization("busy")),
            ],
        )
        store.replace(cluster, "HelmChart", [o.helm_chart()])
        store.replace(cluster, "HelmRepository", [o.helm_repository()])
        store.replace(
            cluster,
            "HelmRelease",
            [
                o.example("helmrelease-stalled-test-failed.yaml"),
                o.helm_release(),
                _upgrade_failed(),
            ],
        )
        store.replace(cluster, "ImagePolicy", [o.image_policy()])
        store.replace(cluster, "ImageRepository", [o.image_repository()])
        store.replace(cluster, "Canary", [o.canary()])
        store.upsert(
            cluster, "GitRepository", o.git_repository(revision=new, updated="2026-01-10T12:00:00Z")
        )
        store.upsert(
            cluster, "Kustomization", o.failing(o.kustomization("infra"), "HealthCheckFailed")
        )
        store.upsert(
            cluster,
            "Kustomization",
            o.kustomization("infra", first_reconciled="2026-01-10T12:00:00Z"),
        )
        store.upsert(
            cluster,
            "Kustomization",
            o.kustomization(applied=new, first_reconciled="2026-01-10T12:01:00Z"),
        )
    store.cluster_changed(
        "prod-eu",
        ClusterState(
            reachable=False,
            synced=True,
            served={"HelmRelease": "helm.toolkit.fluxcd.io/v2"},
            error="refused",
        ),
    )
    return store
