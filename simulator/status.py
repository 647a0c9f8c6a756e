"""Renders a Flux object's ``.status`` from the engine's state, the way each controller writes it.

Pure functions of the state and the cluster's Flux profile: the same state always renders the
same bytes, and old-Flux clusters get only the fields their API version defines.
"""

from __future__ import annotations

from typing import Any

from simulator.kinds import FluxProfile
from simulator.model import Obj, hexdigest, iso

CONDITION_ORDER = (
    "Reconciling",
    "Stalled",
    "Ready",
    "Healthy",
    "Released",
    "TestSuccess",
    "Remediated",
    "ArtifactInStorage",
    "ArtifactOutdated",
    "FetchFailed",
    "BuildFailed",
    "Promoted",
)
SOURCE_KINDS = frozenset(
    {"GitRepository", "OCIRepository", "Bucket", "HelmRepository", "HelmChart"}
)
STORAGE = "http://source-controller.flux-system.svc.cluster.local."

# Resources a Kustomization or HelmRelease "applies", for the inventory: (group, kind, version).
_INVENTORY_KINDS = (
    ("apps", "Deployment", "v1"),
    ("", "Service", "v1"),
    ("", "ServiceAccount", "v1"),
    ("", "ConfigMap", "v1"),
    ("autoscaling", "HorizontalPodAutoscaler", "v2"),
    ("networking.k8s.io", "Ingress", "v1"),
    ("policy", "PodDisruptionBudget", "v1"),
    ("monitoring.coreos.com", "ServiceMonitor", "v1"),
    ("", "Secret", "v1"),
    ("rbac.authorization.k8s.io", "Role", "v1"),
    ("rbac.authorization.k8s.io", "RoleBinding", "v1"),
    ("batch", "CronJob", "v1"),
)


def conditions(obj: Obj) -> list[dict[str, Any]]:
    order = {t: i for i, t in enumerate(CONDITION_ORDER)}
    out = []
    for ctype in sorted(obj.conditions, key=lambda t: order.get(t, 99)):
        cond = obj.conditions[ctype]
        out.append(
            {
                "lastTransitionTime": iso(cond.since),
                "message": cond.message,
                "observedGeneration": cond.generation,
                "reason": cond.reason,
                "status": cond.status,
                "type": ctype,
            }
        )
    return out


def origin_revision(artifact_revision: str) -> str:
    """The Git revision an OCI artifact revision was built from (stable per artifact)."""
    return "main@sha1:" + hexdigest(artifact_revision, length=40)


def artifact(obj: Obj) -> dict[str, Any]:
    sha = hexdigest(obj.cluster, obj.ref, obj.artifact_rev, "tar", length=40)
    path = f"{obj.kind.lower()}/{obj.namespace}/{obj.name}/{sha}.tar.gz"
    return {
        "digest": "sha256:" + hexdigest(obj.cluster, obj.ref, obj.artifact_rev, "digest"),
        "lastUpdateTime": iso(obj.artifact_time),
        "path": path,
        "revision": obj.artifact_rev,
        "size": obj.artifact_size,
        "url": f"{STORAGE}/{path}",
    }


def inventory(obj: Obj, target_namespace: str) -> dict[str, Any]:
    count = int(obj.extra.get("resources", 3))
    base = obj.extra.get("chart") or obj.name
    entries = []
    for i in range(count):
        group, kind, version = _INVENTORY_KINDS[i % len(_INVENTORY_KINDS)]
        name = base if i < len(_INVENTORY_KINDS) else f"{base}-{i // len(_INVENTORY_KINDS)}"
        entries.append({"id": f"{target_namespace}_{name}_{group}_{kind}", "v": version})
    entries.sort(key=lambda e: e["id"])
    return {"entries": entries}


def _source(obj: Obj, profile: FluxProfile) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions(obj),
        "observedGeneration": obj.observed_generation,
    }
    if obj.artifact_rev:
        status["artifact"] = artifact(obj)
    kind = obj.kind
    if kind == "HelmRepository":
        status["url"] = f"{STORAGE}/helmrepository/{obj.namespace}/{obj.name}/index.yaml"
    elif kind == "HelmChart":
        status["url"] = f"{STORAGE}/helmchart/{obj.namespace}/{obj.name}/latest.tar.gz"
        status["observedChartName"] = obj.extra["chart"]
        if obj.source is not None and obj.source.artifact_rev:
            status["observedSourceArtifactRevision"] = obj.source.artifact_rev
    elif kind == "Bucket":
        status["url"] = f"{STORAGE}/bucket/{obj.namespace}/{obj.name}/latest.tar.gz"
    elif kind == "OCIRepository":
        if obj.artifact_rev:
            # `flux push artifact` annotates the Git commit the artifact was built from
            status["artifact"]["metadata"] = {
                "org.opencontainers.image.revision": origin_revision(obj.artifact_rev)
            }
        status["url"] = f"{STORAGE}/ocirepository/{obj.namespace}/{obj.name}/latest.tar.gz"
    elif kind == "GitRepository" and profile == "legacy":
        status["url"] = f"{STORAGE}/gitrepository/{obj.namespace}/{obj.name}/latest.tar.gz"
    return status


def _kustomization(obj: Obj, profile: FluxProfile, spec: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions(obj),
        "observedGeneration": obj.observed_generation,
    }
    if obj.applied_rev:
        status["lastAppliedRevision"] = obj.applied_rev
        status["inventory"] = inventory(obj, spec.get("targetNamespace", obj.namespace))
        if profile == "current" and obj.extra.get("oci"):
            status["lastAppliedOriginRevision"] = origin_revision(obj.applied_rev)
    if obj.attempted_rev:
        status["lastAttemptedRevision"] = obj.attempted_rev
    if profile == "current" and obj.history:
        status["history"] = obj.history
    return status


def _helmrelease(obj: Obj, profile: FluxProfile) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions(obj),
        "lastAttemptedGeneration": obj.extra.get("attempted_generation", obj.observed_generation),
        "observedGeneration": obj.observed_generation,
        "storageNamespace": obj.namespace,
    }
    if not obj.extra.get("oci"):
        status["helmChart"] = f"{obj.namespace}/{obj.namespace}-{obj.name}"
    if obj.attempted_rev:
        status["lastAttemptedRevision"] = obj.attempted_rev
        status["lastAttemptedConfigDigest"] = "sha256:" + hexdigest(obj.ref, "values")
        status["lastAttemptedReleaseAction"] = obj.last_action or "install"
        if profile == "current":
            status["lastAttemptedReleaseActionDuration"] = f"{obj.last_duration:.3f}s"
    for field, value in (
        ("failures", obj.failures),
        ("installFailures", obj.install_failures),
        ("upgradeFailures", obj.upgrade_failures),
    ):
        if value:
            status[field] = value
    if obj.history:
        history = obj.history
        if profile == "legacy":
            history = [
                {k: v for k, v in h.items() if k not in ("action", "ociDigest")} for h in history
            ]
            deployed = next((h for h in obj.history if h["status"] == "deployed"), None)
            if deployed is not None:
                status["lastAppliedRevision"] = deployed["chartVersion"]
        status["history"] = history
        if profile == "current" and any(h["status"] == "deployed" for h in obj.history):
            status["inventory"] = inventory(obj, obj.namespace)
    return status


def _image_repository(obj: Obj) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions(obj),
        "observedGeneration": obj.observed_generation,
    }
    tags: list[str] = obj.extra.get("tags", [])
    status["canonicalImageName"] = obj.extra["image"]
    status["observedExclusionList"] = ["^.*\\.sig$"]
    if tags:
        status["lastScanResult"] = {
            "latestTags": list(reversed(tags[-10:])),
            "scanTime": iso(obj.artifact_time),
            "tagCount": len(tags),
        }
    return status


def _image_policy(obj: Obj, profile: FluxProfile) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions(obj),
        "observedGeneration": obj.observed_generation,
    }
    image = obj.extra["image"]
    tag = obj.applied_rev
    previous = obj.extra.get("previous")
    if tag:
        if profile == "current":
            status["latestRef"] = {"name": image, "tag": tag}
            if previous:
                status["observedPreviousRef"] = {"name": image, "tag": previous}
        else:
            status["latestImage"] = f"{image}:{tag}"
            if previous:
                status["observedPreviousImage"] = f"{image}:{previous}"
    return status


def _automation(obj: Obj, profile: FluxProfile) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions(obj),
        "observedGeneration": obj.observed_generation,
    }
    if obj.artifact_time:
        status["lastAutomationRunTime"] = iso(obj.artifact_time)
    if obj.applied_rev:
        status["lastPushCommit"] = obj.applied_rev
        status["lastPushTime"] = iso(obj.extra["push_time"])
    policy: Obj | None = obj.extra.get("policy")
    if policy is not None and obj.extra.get("observed_tag"):
        status["observedPolicies"] = {
            policy.name: {"name": policy.extra["image"], "tag": obj.extra["observed_tag"]}
        }
    if obj.source is not None and obj.attempted_rev:
        status["observedSourceRevision"] = obj.attempted_rev
    return status


def _receiver(obj: Obj) -> dict[str, Any]:
    return {
        "conditions": conditions(obj),
        "observedGeneration": obj.observed_generation,
        "webhookPath": "/hook/" + hexdigest("token", obj.name, obj.namespace),
    }


def _canary(obj: Obj) -> dict[str, Any]:
    promoted = obj.conditions.get("Promoted")
    status: dict[str, Any] = {
        "canaryWeight": int(obj.extra.get("weight", 0)),
        "failedChecks": int(obj.extra.get("failed_checks", 0)),
        "iterations": 0,
        "lastAppliedSpec": hexdigest(obj.ref, obj.attempted_rev, length=16),
        "lastPromotedSpec": hexdigest(obj.ref, obj.applied_rev, length=16),
        "lastTransitionTime": iso(promoted.since if promoted else obj.artifact_time),
        "phase": obj.extra.get("phase", "Initialized"),
    }
    if promoted is not None:
        status["conditions"] = [
            {
                "lastTransitionTime": iso(promoted.since),
                "lastUpdateTime": iso(obj.artifact_time or promoted.since),
                "message": promoted.message,
                "reason": promoted.reason,
                "status": promoted.status,
                "type": "Promoted",
            }
        ]
    return status


def render(obj: Obj, profile: FluxProfile, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The status the owning controller would have written, or None for status-less kinds."""
    status = _render(obj, profile, spec)
    handled = obj.extra.get("handled_at")
    # Canary has no such field, nor has the v1beta2 ImagePolicy.
    lacks = obj.kind == "Canary" or (obj.kind == "ImagePolicy" and profile == "legacy")
    if status is not None and handled and not lacks:
        status["lastHandledReconcileAt"] = handled
    return status


def _render(obj: Obj, profile: FluxProfile, spec: dict[str, Any]) -> dict[str, Any] | None:
    kind = obj.kind
    if kind in SOURCE_KINDS:
        return _source(obj, profile)
    if kind == "Kustomization":
        return _kustomization(obj, profile, spec)
    if kind == "HelmRelease":
        return _helmrelease(obj, profile)
    if kind == "ImageRepository":
        return _image_repository(obj)
    if kind == "ImagePolicy":
        return _image_policy(obj, profile)
    if kind == "ImageUpdateAutomation":
        return _automation(obj, profile)
    if kind == "Receiver":
        return _receiver(obj)
    if kind == "Canary":
        return _canary(obj)
    return None
