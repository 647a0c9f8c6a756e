"""Builders of real-shaped Flux objects (field names and reasons as the controllers write them)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import EXAMPLES_DIR

T0 = "2026-01-10T10:00:00Z"
T0_UNIX = 1768039200.0
SHA_A = "a" * 40
SHA_B = "b" * 40

API = {
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1",
    "Bucket": "source.toolkit.fluxcd.io/v1",
    "HelmRepository": "source.toolkit.fluxcd.io/v1",
    "HelmChart": "source.toolkit.fluxcd.io/v1",
    "ExternalArtifact": "source.toolkit.fluxcd.io/v1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    "ImageRepository": "image.toolkit.fluxcd.io/v1",
    "ImagePolicy": "image.toolkit.fluxcd.io/v1",
    "ImageUpdateAutomation": "image.toolkit.fluxcd.io/v1",
    "Receiver": "notification.toolkit.fluxcd.io/v1",
    "Alert": "notification.toolkit.fluxcd.io/v1beta3",
    "Provider": "notification.toolkit.fluxcd.io/v1beta3",
    "Canary": "flagger.app/v1beta1",
}


def example(file: str) -> dict[str, Any]:
    """One of the shared example objects, with a uid (examples have none)."""
    obj: dict[str, Any] = yaml.safe_load(Path(EXAMPLES_DIR, file).read_text())
    obj["metadata"].setdefault("uid", f"uid-{file}")
    return obj


def cond(ctype: str, status: str, reason: str, message: str = "", at: str = T0) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message or reason,
        "lastTransitionTime": at,
        "observedGeneration": 1,
    }


def base(kind: str, name: str, namespace: str = "flux-system", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": API[kind],
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{kind}-{namespace}-{name}",
            "generation": 1,
            "labels": dict(labels),
        },
        "spec": {"interval": "5m0s"},
        "status": {"observedGeneration": 1, "conditions": []},
    }


def ready(obj: dict[str, Any], reason: str = "Succeeded", at: str = T0) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["status"]["conditions"] = [cond("Ready", "True", reason, at=at)]
    return obj


def failing(
    obj: dict[str, Any], reason: str, message: str = "", at: str = T0, retrying: bool = True
) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    conditions = [cond("Ready", "False", reason, message, at)]
    if retrying:
        conditions.insert(0, cond("Reconciling", "True", "ProgressingWithRetry", message, at))
    obj["status"]["conditions"] = conditions
    return obj


def progressing(obj: dict[str, Any], at: str = T0) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["status"]["conditions"] = [
        cond("Reconciling", "True", "Progressing", "reconciliation in progress", at),
        cond("Ready", "Unknown", "Progressing", "reconciliation in progress", at),
    ]
    return obj


def git_repository(
    name: str = "app",
    revision: str = f"main@sha1:{SHA_A}",
    updated: str = T0,
    namespace: str = "flux-system",
    **labels: str,
) -> dict[str, Any]:
    obj = base("GitRepository", name, namespace, **labels)
    obj["spec"].update(url=f"https://github.com/example/{name}", ref={"branch": "main"})
    sha = revision.rpartition(":")[2]
    obj["status"]["artifact"] = {
        "digest": "sha256:" + "0" * 64,
        "lastUpdateTime": updated,
        "path": f"gitrepository/{namespace}/{name}/{sha}.tar.gz",
        "revision": revision,
        "size": 1234,
        "url": f"http://source-controller.flux-system.svc.cluster.local./gitrepository/{namespace}/{name}/{sha}.tar.gz",
    }
    return ready(obj, "Succeeded", updated)


def kustomization(
    name: str = "app",
    source: str = "app",
    applied: str = f"main@sha1:{SHA_A}",
    attempted: str | None = None,
    namespace: str = "flux-system",
    depends_on: tuple[str, ...] = (),
    first_reconciled: str = T0,
    **labels: str,
) -> dict[str, Any]:
    obj = base("Kustomization", name, namespace, **labels)
    obj["spec"].update(
        interval="10m",
        path="./deploy",
        prune=True,
        sourceRef={"kind": "GitRepository", "name": source},
    )
    if depends_on:
        obj["spec"]["dependsOn"] = [{"name": d} for d in depends_on]
    obj["status"].update(
        lastAppliedRevision=applied,
        lastAttemptedRevision=attempted or applied,
        inventory={"entries": [{"id": f"{namespace}_{name}_apps_Deployment", "v": "v1"}]},
        history=[
            {
                "digest": "sha256:" + "1" * 64,
                "firstReconciled": first_reconciled,
                "lastReconciled": first_reconciled,
                "lastReconciledDuration": "2.5s",
                "lastReconciledStatus": "ReconciliationSucceeded",
                "totalReconciliations": 1,
                "metadata": {"revision": applied},
            }
        ],
    )
    return ready(obj, "ReconciliationSucceeded", first_reconciled)


def helm_release(
    name: str = "web",
    chart_version: str = "6.5.3",
    attempted: str | None = None,
    namespace: str = "apps",
    deployed: str = T0,
    **labels: str,
) -> dict[str, Any]:
    obj = base("HelmRelease", name, namespace, **labels)
    obj["spec"].update(
        interval="15m",
        chart={
            "spec": {
                "chart": name,
                "version": "6.x",
                "sourceRef": {
                    "kind": "HelmRepository",
                    "name": "charts",
                    "namespace": "flux-system",
                },
            }
        },
    )
    obj["status"].update(
        helmChart=f"flux-system/{namespace}-{name}",
        lastAttemptedRevision=attempted or chart_version,
        lastAttemptedReleaseAction="upgrade",
        history=[
            {
                "chartName": name,
                "chartVersion": chart_version,
                "appVersion": chart_version,
                "configDigest": "sha256:" + "2" * 64,
                "digest": "sha256:" + "3" * 64,
                "firstDeployed": T0,
                "lastDeployed": deployed,
                "name": name,
                "namespace": namespace,
                "status": "deployed",
                "version": 2,
            }
        ],
        inventory={"entries": [{"id": f"{namespace}_{name}_apps_Deployment", "v": "v1"}]},
    )
    return ready(obj, "UpgradeSucceeded", deployed)


def helm_chart(name: str = "apps-web", version: str = "6.5.3", updated: str = T0) -> dict[str, Any]:
    obj = base("HelmChart", name, "flux-system")
    obj["spec"].update(
        chart="web", version="6.x", sourceRef={"kind": "HelmRepository", "name": "charts"}
    )
    obj["status"]["artifact"] = {
        "digest": "sha256:" + "4" * 64,
        "lastUpdateTime": updated,
        "path": f"helmchart/flux-system/{name}/web-{version}.tgz",
        "revision": version,
        "size": 4321,
        "url": f"http://source-controller.flux-system.svc.cluster.local./helmchart/flux-system/{name}/web-{version}.tgz",
    }
    return ready(obj, "ChartPullSucceeded", updated)


def helm_repository(name: str = "charts") -> dict[str, Any]:
    obj = base("HelmRepository", name, "flux-system")
    obj["spec"].update(url="https://charts.example.com")
    obj["status"]["artifact"] = {
        "digest": "sha256:" + "5" * 64,
        "lastUpdateTime": T0,
        "path": f"helmrepository/flux-system/{name}/index.yaml",
        "revision": "sha256:" + "5" * 64,
        "size": 99,
        "url": "http://source-controller.flux-system.svc.cluster.local./index.yaml",
    }
    return ready(obj, "Succeeded")


def image_policy(name: str = "web", tag: str = "1.2.3") -> dict[str, Any]:
    obj = base("ImagePolicy", name, "flux-system")
    obj["spec"] = {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": "1.x"}}}
    obj["status"]["latestRef"] = {"name": "ghcr.io/example/web", "tag": tag}
    return ready(obj, "Succeeded")


def image_repository(name: str = "web") -> dict[str, Any]:
    obj = base("ImageRepository", name, "flux-system")
    obj["spec"].update(image="ghcr.io/example/web")
    obj["status"]["lastScanResult"] = {
        "tagCount": 42,
        "scanTime": T0,
        "revision": "sha256:" + "6" * 64,
    }
    return ready(obj, "Succeeded")


def canary(name: str = "web", phase: str = "Progressing", weight: int = 20) -> dict[str, Any]:
    obj = base("Canary", name, "apps")
    obj["spec"] = {
        "analysis": {"interval": "1m"},
        "targetRef": {"kind": "Deployment", "name": name},
    }
    obj["status"] = {
        "phase": phase,
        "canaryWeight": weight,
        "failedChecks": 1,
        "iterations": 3,
        "lastTransitionTime": T0,
        "conditions": [
            {
                "type": "Promoted",
                "status": "Unknown",
                "reason": phase,
                "message": "Canary analysis in progress",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
            }
        ],
    }
    return obj
