"""The Kustomize overlays produce the same objects as the Helm chart with the matching values.

Rendered by a real kustomize (the one built into kubectl) and by the real Helm engine, then
compared object by object, after dropping what only Helm adds (its chart and managed-by labels,
the config checksum that rolls pods, the keep policy on the state claim) and the Namespace the
overlays create (Helm leaves that to --create-namespace). The overlays' objects also pass the
same schema and policy checks as the chart's.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.deploy.renders import KUSTOMIZE, Manifest, example_values, kustomize_build, render_chart
from tests.deploy.test_every_render_validates_against_schemas import (
    KUBERNETES_VERSIONS,
    validate_builtin,
)

# overlay -> the chart values it stands for
OVERLAYS = {"single-cluster": "defaults", "hub": "hub", "ha": "ha"}
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
HELM_ONLY_ANNOTATIONS = ("checksum/config", "helm.sh/resource-policy")


def kustomize(overlay: str) -> list[Manifest]:
    return kustomize_build(KUSTOMIZE / "overlays" / overlay)


def _strip_meta(meta: dict[str, Any]) -> None:
    for key in HELM_ONLY_LABELS:
        meta.get("labels", {}).pop(key, None)
    annotations = meta.get("annotations", {})
    for key in HELM_ONLY_ANNOTATIONS:
        annotations.pop(key, None)
    if "annotations" in meta and not annotations:
        del meta["annotations"]


def normalized(objects: list[Manifest]) -> dict[str, Manifest]:
    """kind/name -> object without the Helm-only parts; config files compared as data."""
    out: dict[str, Manifest] = {}
    for original in objects:
        if original["kind"] == "Namespace":
            continue
        obj = copy.deepcopy(original)
        _strip_meta(obj["metadata"])
        template = obj.get("spec", {}).get("template")
        if isinstance(template, dict):
            _strip_meta(template["metadata"])
            # Kustomize's patches prepend list items; the order of volumes and mounts means
            # nothing to Kubernetes (containers, args and ports keep theirs).
            pod = template["spec"]
            pod["volumes"] = sorted(pod.get("volumes", []), key=lambda v: v["name"])
            for container in pod["containers"]:
                mounts = container.get("volumeMounts", [])
                container["volumeMounts"] = sorted(mounts, key=lambda m: m["mountPath"])
        if obj["kind"] == "ConfigMap" and "fluxwatch.yaml" in obj.get("data", {}):
            obj["data"]["fluxwatch.yaml"] = yaml.safe_load(obj["data"]["fluxwatch.yaml"])
        # Both sides through JSON: YAML's int/str spellings ("0440" vs 288) compare equal.
        out[f"{obj['kind']}/{obj['metadata']['name']}"] = json.loads(json.dumps(obj))
    return out


@pytest.mark.parametrize(("overlay", "example"), OVERLAYS.items())
def test_overlay_equals_chart_object_by_object(overlay: str, example: str) -> None:
    from_kustomize = normalized(kustomize(overlay))
    from_helm = normalized(render_chart(example_values(example)))
    assert sorted(from_kustomize) == sorted(from_helm)
    for key in sorted(from_helm):
        assert from_kustomize[key] == from_helm[key], key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_objects_validate(overlay: str) -> None:
    for obj in kustomize(overlay):
        for version in KUBERNETES_VERSIONS:
            validate_builtin(obj, version)
