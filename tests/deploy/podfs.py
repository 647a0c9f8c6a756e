"""A pod's files, laid out in a temporary directory from a render.

The rendered ConfigMap's fluxwatch.yaml is written where the pod mounts it, with its paths moved
under the directory, and every Secret file the config names gets a stand-in of the right shape,
after checking that it is on a mounted Secret volume. What is written is what the real config
loaders then read.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.renders import Manifest, find

POD_ROOTS = ("/etc/fluxwatch", "/var/lib/fluxwatch")
# libpq's TLS files (the PostgreSQL outbox's CA, client certificate and key): paths as well.
FILE_KEYS = ("sslrootcert", "sslcert", "sslkey")


def config_files(section: Any, path: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every *_file key and TLS file: what the config reads from files."""
    found: list[tuple[str, str]] = []
    if isinstance(section, dict):
        for key, value in section.items():
            if (str(key).endswith("_file") or key in FILE_KEYS) and isinstance(value, str):
                found.append((f"{path}.{key}", value))
            else:
                found += config_files(value, f"{path}.{key}")
    elif isinstance(section, list):
        for i, item in enumerate(section):
            found += config_files(item, f"{path}[{i}]")
    return found


def stand_in(key_path: str) -> str:
    if key_path.endswith(".secret_file"):  # Standard Webhooks secret
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(24)


def mounts_of(objects: tuple[Manifest, ...], container: str) -> dict[str, dict[str, Any]]:
    """mountPath -> volume of the named container."""
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        pod = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            if c["name"] == container:
                return {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    raise AssertionError(f"no container {container}")


def in_pod(root: Path, path: str) -> Path:
    assert path.startswith(POD_ROOTS), path
    return root / path.lstrip("/")


def lay_out_pod(
    objects: tuple[Manifest, ...] | list[Manifest],
    root: Path,
    *,
    configmap: str = "fluxwatch-config",
    container: str = "bridge",
) -> dict[str, Any]:
    """Writes the rendered fluxwatch.yaml (paths moved under root) and stand-in secret files
    (of the bridge's section, which the named container must mount from Secrets)."""
    objects = tuple(objects)
    document = yaml.safe_load(find(objects, "ConfigMap", configmap)["data"]["fluxwatch.yaml"])
    bridge = document.get("bridge") or {}
    workloads = {"Deployment", "Job"}
    mounts = mounts_of(objects, container) if any(o["kind"] in workloads for o in objects) else {}
    for key_path, value in config_files(bridge, "bridge"):
        mount = next((m for m in mounts if value.startswith(m + "/")), None)
        assert mount is not None, f"{key_path}: {value} is on no mounted volume"
        assert "secret" in mounts[mount], f"{key_path}: {value} is not from a Secret"
        target = in_pod(root, value)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(stand_in(key_path))
    text = yaml.safe_dump(document)
    for prefix in POD_ROOTS:
        text = text.replace(prefix, str(root) + prefix)
    config = in_pod(root, "/etc/fluxwatch/config/fluxwatch.yaml")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return document


def container_args(
    objects: tuple[Manifest, ...] | list[Manifest], kind: str, name: str, root: Path
) -> list[str]:
    """The workload's container arguments, with pod paths moved under ``root``."""
    (container,) = find(objects, kind, name)["spec"]["template"]["spec"]["containers"]
    return [str(root) + arg if arg.startswith(POD_ROOTS) else arg for arg in container["args"]]
