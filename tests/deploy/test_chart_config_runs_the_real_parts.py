"""What the chart hands the containers is accepted by fluxwatch itself.

For every render the pod's files are laid out in a temporary directory (the ConfigMap where it
is mounted, a stand-in for each mounted Secret file the config names), then the container's
arguments go through the real CLI parser and the real config loaders; each StatefulSet pod's host
name gives the shard of its ordinal.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.kube.fleet import plan_shards
from fluxwatch.cli import build_parser
from fluxwatch.commands.exporter import settings_from_args
from fluxwatch.config import load_config
from tests.deploy.renders import Manifest, example_names, find, render_example

POD_ROOTS = ("/etc/fluxwatch", "/var/lib/fluxwatch")


def _files(section: Any, path: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every *_file key: the secrets and files the config reads."""
    found: list[tuple[str, str]] = []
    if isinstance(section, dict):
        for key, value in section.items():
            if str(key).endswith("_file") and isinstance(value, str):
                found.append((f"{path}.{key}", value))
            else:
                found += _files(value, f"{path}.{key}")
    elif isinstance(section, list):
        for i, item in enumerate(section):
            found += _files(item, f"{path}[{i}]")
    return found


def _stand_in(key_path: str) -> str:
    if key_path.endswith(".secret_file"):  # Standard Webhooks secret
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(24)


def _mounts(objects: tuple[Manifest, ...], container: str) -> dict[str, dict[str, Any]]:
    """mountPath -> volume of the named container."""
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet"}:
            continue
        pod = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            if c["name"] == container:
                return {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    raise AssertionError(f"no container {container}")


def _in_pod(root: Path, path: str) -> Path:
    assert path.startswith(POD_ROOTS), path
    return root / path.lstrip("/")


def _lay_out_pod(objects: tuple[Manifest, ...], root: Path) -> dict[str, Any]:
    """Writes the rendered fluxwatch.yaml (paths moved under root) and stand-in secret files."""
    document = yaml.safe_load(
        find(objects, "ConfigMap", "fluxwatch-config")["data"]["fluxwatch.yaml"]
    )
    bridge = document.get("bridge") or {}
    mounts = _mounts(objects, "bridge") if any(o["kind"] == "Deployment" for o in objects) else {}
    for key_path, value in _files(bridge, "bridge"):
        mount = next((m for m in mounts if value.startswith(m + "/")), None)
        assert mount is not None, f"{key_path}: {value} is on no mounted volume"
        assert "secret" in mounts[mount], f"{key_path}: {value} is not from a Secret"
        target = _in_pod(root, value)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_stand_in(key_path))
    text = yaml.safe_dump(document)
    for prefix in POD_ROOTS:
        text = text.replace(prefix, str(root) + prefix)
    config = _in_pod(root, "/etc/fluxwatch/config/fluxwatch.yaml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return document


def _args(objects: tuple[Manifest, ...], kind: str, name: str, root: Path) -> list[str]:
    (container,) = find(objects, kind, name)["spec"]["template"]["spec"]["containers"]
    return [str(root) + arg if arg.startswith(POD_ROOTS) else arg for arg in container["args"]]


@pytest.mark.parametrize("example", example_names())
def test_rendered_config_loads_with_the_real_loader(example: str, tmp_path: Path) -> None:
    objects = render_example(example)
    document = _lay_out_pod(objects, tmp_path)
    loaded = load_config(_in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml"))
    if any(o["kind"] == "Deployment" for o in objects):
        assert loaded.bridge is not None
        state = document["bridge"]["state_dir"]
        mounts = _mounts(objects, "bridge")
        assert state in mounts
        assert "persistentVolumeClaim" in mounts[state] or "emptyDir" in mounts[state]


@pytest.mark.parametrize("example", example_names())
def test_each_exporter_pod_takes_the_shard_of_its_ordinal(example: str, tmp_path: Path) -> None:
    objects = render_example(example)
    _lay_out_pod(objects, tmp_path)
    sts = find(objects, "StatefulSet", "fluxwatch-exporter")
    args = build_parser().parse_args(_args(objects, "StatefulSet", "fluxwatch-exporter", tmp_path))
    settings = settings_from_args(args)
    replicas = sts["spec"]["replicas"]
    assert settings.total_shards == replicas
    static = 0 if settings.kubeconfig_dir else 1
    for ordinal in range(replicas):
        # A StatefulSet pod's host name is "<statefulset name>-<ordinal>".
        plan = plan_shards(settings, static, f"{sts['metadata']['name']}-{ordinal}")
        assert plan.shard == ordinal
    if settings.kubeconfig_dir:
        in_pod = "/" + str(Path(settings.kubeconfig_dir).relative_to(tmp_path))
        assert "projected" in _mounts(objects, "exporter")[in_pod]
    else:
        assert settings.in_cluster


def _with_bridge() -> list[str]:
    return [n for n in example_names() if any(o["kind"] == "Deployment" for o in render_example(n))]


@pytest.mark.parametrize("example", _with_bridge())
def test_bridge_arguments_parse(example: str, tmp_path: Path) -> None:
    objects = render_example(example)
    args = build_parser().parse_args(_args(objects, "Deployment", "fluxwatch-bridge", tmp_path))
    assert Path(args.config) == _in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml")


def test_tenant_exporter_watches_its_namespace_only(tmp_path: Path) -> None:
    objects = render_example("tenant")
    _lay_out_pod(objects, tmp_path)
    args = build_parser().parse_args(_args(objects, "StatefulSet", "fluxwatch-exporter", tmp_path))
    assert settings_from_args(args).namespace == "team-a"
