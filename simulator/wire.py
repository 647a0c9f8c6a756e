"""Pure builders for what kube-apiserver puts on the wire: Status objects, discovery documents,
label and field selectors, continue tokens. No I/O here, so every rule is unit-testable."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from simulator.kinds import GROUPS, KINDS, FluxProfile, KindInfo

KUBE_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.4-fluxwatch-sim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

READ_VERBS = ["get", "list", "watch"]
# The verbs a real CRD advertises; writes answer 405 here because the simulator is read-only
# for clients (the test-control API changes objects instead).
CRD_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]


def status_doc(code: int, reason: str, message: str) -> dict[str, Any]:
    """A ``meta/v1 Status`` failure, the body of every non-2xx answer and of ERROR events."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def expired(requested: int, oldest: int) -> dict[str, Any]:
    """The 410 a watch or list gets for a version older than the retained history."""
    return status_doc(410, "Expired", f"too old resource version: {requested} ({oldest})")


def encode(doc: Any) -> bytes:
    """Compact, key-sorted JSON: deterministic bytes, encoded once and shared."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


# --- discovery -------------------------------------------------------------------------------


def served(missing_groups: frozenset[str]) -> list[KindInfo]:
    """The kinds a cluster serves: every kind whose API group it has installed."""
    return [k for k in KINDS if k.group not in missing_groups]


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def core_resources() -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": []}


def _group_doc(group: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def group_versions(profile: FluxProfile, missing_groups: frozenset[str]) -> dict[str, list[str]]:
    """group -> served versions (sorted), for this cluster's Flux profile."""
    out: dict[str, list[str]] = {}
    for info in served(missing_groups):
        versions = out.setdefault(info.group, [])
        version = info.version_for(profile)
        if version not in versions:
            versions.append(version)
    return {g: sorted(v) for g, v in out.items()}


def api_group_list(profile: FluxProfile, missing_groups: frozenset[str]) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for group, versions in sorted(group_versions(profile, missing_groups).items()):
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        # The preferred version is the newest one a cluster serves; with one served version
        # per kind that is the first of the kinds' versions.
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[-1]})
    order = {g: i for i, g in enumerate(GROUPS)}
    groups.sort(key=lambda g: order.get(str(g["name"]), 99))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": gvs,
        "preferredVersion": gvs[-1],
    }


def api_resource_list(
    group: str, version: str, kinds: list[KindInfo], profile: FluxProfile
) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for info in kinds:
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.kind.lower(),
            "namespaced": True,
            "kind": info.kind,
            "verbs": CRD_VERBS,
            "storageVersionHash": "",
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if group.endswith("fluxcd.io"):
            entry["categories"] = ["all", "flux"] if group != "flagger.app" else ["all"]
        resources.append(entry)
        if info.status_for(profile):
            resources.append(
                {
                    "name": f"{info.plural}/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": info.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}",
        "resources": resources,
    }


# --- selectors -------------------------------------------------------------------------------

Op = Literal["=", "!=", "in", "notin", "exists", "!exists"]


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: Op
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # != and notin match objects without the key, as in kube-apiserver.
        return not present or labels[self.key] not in self.values


class SelectorError(ValueError):
    """A selector kube-apiserver would reject with 400 BadRequest."""


_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_top_level(selector: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(selector: str) -> tuple[Requirement, ...]:
    """Parse the ``labelSelector`` grammar: ``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``,
    ``k in (a,b)``, ``k notin (a,b)``, comma-separated (AND)."""
    requirements: list[Requirement] = []
    for part in _split_top_level(selector):
        if m := _SET_RE.match(part):
            values = frozenset(v.strip() for v in m.group(4).split(",") if v.strip())
            op: Op = "in" if m.group(3) == "in" else "notin"
            requirements.append(Requirement(m.group(1), op, values))
        elif m := _CMP_RE.match(part):
            op = "!=" if m.group(3) == "!=" else "="
            requirements.append(Requirement(m.group(1), op, frozenset([m.group(4)])))
        elif m := _EXISTS_RE.match(part):
            requirements.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
    return tuple(requirements)


def parse_field_selector(selector: str) -> tuple[Requirement, ...]:
    """Field selectors on custom resources support only metadata.name and metadata.namespace."""
    requirements: list[Requirement] = []
    for part in _split_top_level(selector):
        m = _CMP_RE.match(part)
        if not m or m.group(1) not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(f"field label not supported: {part.strip()!r}")
        op: Op = "!=" if m.group(3) == "!=" else "="
        requirements.append(Requirement(m.group(1), op, frozenset([m.group(4)])))
    return tuple(requirements)


def matches_all(requirements: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


# --- pagination ------------------------------------------------------------------------------


def encode_continue(resource_version: int, namespace: str, name: str) -> str:
    """An opaque token naming the list's version and the last key served."""
    raw = json.dumps({"rv": resource_version, "start": [namespace, name]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode()))
        namespace, name = doc["start"]
        return int(doc["rv"]), str(namespace), str(name)
    except (ValueError, KeyError, TypeError) as exc:
        raise SelectorError(f"continue key is not valid: {exc}") from None


def parse_bool(value: str | None) -> bool:
    """kube-apiserver accepts ``true``, ``True`` and ``1`` for boolean query parameters."""
    return value is not None and value.strip().lower() in ("true", "1")


# --- kubectl tables ----------------------------------------------------------------------------


def wants_table(accept: str) -> bool:
    """kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` to print columns."""
    return "as=Table" in accept


def _ready(obj: Mapping[str, Any]) -> tuple[str, str]:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == "Ready":
            return str(cond.get("status", "")), str(cond.get("message", ""))
    return "", ""


def human_age(seconds: float) -> str:
    """kube-apiserver's age format for date columns: ``45s``, ``12m``, ``5h``, ``84d``, ``2y``."""
    seconds = max(0, int(seconds))
    for unit, size, limit in (("s", 1, 120), ("m", 60, 3 * 3600), ("h", 3600, 48 * 3600)):
        if seconds < limit:
            return f"{seconds // size}{unit}"
    days = seconds // 86400
    return f"{days}d" if days < 365 * 2 else f"{days // 365}y"


def table(
    info: KindInfo, objects: list[dict[str, Any]], meta: dict[str, Any], now: float
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1 Table`` with the CRDs' main printer columns (Age, Ready, Status;
    phase and weight for a Canary), so ``kubectl get`` looks as it does against Flux."""

    def column(name: str, kind: str = "string", fmt: str = "") -> dict[str, Any]:
        return {"name": name, "type": kind, "format": fmt, "description": name, "priority": 0}

    if info.kind == "Canary":
        columns = [
            column("Name", fmt="name"),
            column("Status"),
            column("Weight"),
            column("Age", "date"),
        ]
    elif info.has_status:
        columns = [
            column("Name", fmt="name"),
            column("Age", "date"),
            column("Ready"),
            column("Status"),
        ]
    else:
        columns = [column("Name", fmt="name"), column("Age", "date")]

    def age(metadata: Mapping[str, Any]) -> str:
        created = metadata.get("creationTimestamp")
        if not created:
            return "<unknown>"
        stamp = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        return human_age(now - stamp.timestamp())

    rows = []
    for obj in objects:
        metadata = obj["metadata"]
        cells: list[Any] = [metadata["name"]]
        if info.kind == "Canary":
            status = obj.get("status", {})
            cells += [status.get("phase", ""), status.get("canaryWeight", 0), age(metadata)]
        else:
            cells.append(age(metadata))
            if info.has_status:
                cells += list(_ready(obj))
        partial = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {
                k: metadata[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in metadata
            },
        }
        rows.append({"cells": cells, "object": partial})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    }
