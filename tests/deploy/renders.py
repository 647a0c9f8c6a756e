"""The Helm chart rendered by the real Helm engine (helm-python-sdk: Helm v4 as a library).

Every values file the docs show (`deploy/helm/fluxwatch/examples/*.yaml`) plus the defaults is
rendered once per session; the tests check the objects.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

from tests.conftest import REPO_ROOT, require_tool

CHART = REPO_ROOT / "deploy" / "helm" / "fluxwatch"
KUSTOMIZE = REPO_ROOT / "deploy" / "kustomize"
EXAMPLES = CHART / "examples"
RELEASE = "fluxwatch"
NAMESPACE = "fluxwatch"

Manifest = dict[str, Any]


def example_names() -> list[str]:
    return ["defaults", *sorted(p.stem for p in EXAMPLES.glob("*.yaml"))]


def example_values(name: str) -> dict[str, Any]:
    if name == "defaults":
        return {}
    values: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()) or {}
    return values


def render_chart(
    values: dict[str, Any] | None = None, chart: Path = CHART, namespace: str = NAMESPACE
) -> list[Manifest]:
    """Objects of a render, ordered by (kind, name), as `helm template` would install them."""
    with helm.Chart.load(chart) as loaded:
        rendered = loaded.render(values, name=RELEASE, namespace=namespace, is_install=True)
    objects: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith(".yaml"):
            continue  # NOTES.txt
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"]))


@functools.cache
def render_example(name: str) -> tuple[Manifest, ...]:
    return tuple(render_chart(example_values(name)))


def pod_specs(objects: list[Manifest] | tuple[Manifest, ...]) -> list[tuple[str, Manifest]]:
    """(object name, pod spec) of every workload."""
    return [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    ]


def find(objects: tuple[Manifest, ...] | list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def kustomize_build(directory: Path) -> list[Manifest]:
    """Objects of a kustomization, rendered by the kustomize built into kubectl."""
    kubectl = require_tool("kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
