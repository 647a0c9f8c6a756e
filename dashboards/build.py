"""Every fluxwatch dashboard, and the files it is provisioned from.

``generate`` returns Grafana's JSON model per dashboard UID; ``render`` turns them into files:
plain JSON (Grafana's file provisioning or its HTTP API), ConfigMaps the kube-prometheus-stack
Grafana sidecar picks up (label ``grafana_dashboard: "1"``), or grafana-operator
``GrafanaDashboard`` resources. Output is deterministic: sorted keys, stable UIDs, no
timestamps, so a re-run changes nothing and a diff shows what really changed.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import yaml

from dashboards import (
    cluster,
    controllers,
    delivery,
    fleet,
    fluxwatch_self,
    rollouts,
    sources,
    tenant,
)
from dashboards.common import Context, Nav
from dashboards.settings import DashboardSettings

MODULES: tuple[ModuleType, ...] = (
    fleet,
    cluster,
    tenant,
    sources,
    rollouts,
    delivery,
    controllers,
    fluxwatch_self,
)
FORMATS: tuple[str, ...] = ("json", "configmap", "grafana-operator")
SIDECAR_LABEL = "grafana_dashboard"
SIDECAR_FOLDER_ANNOTATION = (
    "grafana_folder"  # kube-prometheus-stack's sidecar.dashboards.folderAnnotation
)


def generate(settings: DashboardSettings | None = None) -> dict[str, dict[str, Any]]:
    """UID -> dashboard JSON model, in navigation order."""
    settings = settings or DashboardSettings()
    nav = tuple(Nav(settings.uid(m.NAME), m.TITLE) for m in MODULES)
    ctx = Context(settings, nav)
    out: dict[str, dict[str, Any]] = {}
    for module in MODULES:
        board: dict[str, Any] = module.build(ctx)
        out[board["uid"]] = board
    return out


def queries(settings: DashboardSettings | None = None) -> dict[str, dict[str, str]]:
    """Dashboard name -> its queries by key: the single place each dashboard keeps them."""
    settings = settings or DashboardSettings()
    nav = tuple(Nav(settings.uid(m.NAME), m.TITLE) for m in MODULES)
    ctx = Context(settings, nav)
    return {m.NAME: m.queries(ctx) for m in MODULES}


def dumps(board: dict[str, Any]) -> str:
    return json.dumps(board, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the dashboard JSON) as literal blocks, so the YAML stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def _yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=True, width=1000)


def render(
    boards: dict[str, dict[str, Any]],
    fmt: str,
    *,
    namespace: str = "monitoring",
    folder: str = "Flux",
    instance_labels: dict[str, str] | None = None,
) -> dict[str, str]:
    """File name -> content for ``fmt`` (one of ``FORMATS``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    files: dict[str, str] = {}
    for uid, board in boards.items():
        body = dumps(board)
        if fmt == "json":
            files[f"{uid}.json"] = body
        elif fmt == "configmap":
            files[f"{uid}.configmap.yaml"] = _yaml(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": uid,
                        "namespace": namespace,
                        "labels": {SIDECAR_LABEL: "1", "app.kubernetes.io/part-of": "fluxwatch"},
                        "annotations": {SIDECAR_FOLDER_ANNOTATION: folder},
                    },
                    "data": {f"{uid}.json": body},
                }
            )
        else:
            files[f"{uid}.grafanadashboard.yaml"] = _yaml(
                {
                    "apiVersion": "grafana.integreatly.org/v1beta1",
                    "kind": "GrafanaDashboard",
                    "metadata": {
                        "name": uid,
                        "namespace": namespace,
                        "labels": {"app.kubernetes.io/part-of": "fluxwatch"},
                    },
                    "spec": {
                        "instanceSelector": {
                            "matchLabels": instance_labels or {"dashboards": "grafana"}
                        },
                        "folder": folder,
                        "uid": uid,
                        "resyncPeriod": "10m",
                        "json": body,
                    },
                }
            )
    return files
