"""Policy over every render: read-only RBAC on the Flux kinds only, locked-down pods, no secrets.

These hold for the defaults and for every documented values example, so an option added later
cannot quietly widen what fluxwatch may do in a cluster.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest

from exporter.kinds import KINDS
from tests.deploy.renders import Manifest, example_names, pod_specs, render_example

READ_VERBS = {"get", "list", "watch"}
WATCHED = {(k.group, k.plural) for k in KINDS}
# Shapes of secret values that must never appear in a rendered object.
SECRET_SHAPES = re.compile(
    r"whsec_|xox[abp]-|-----BEGIN|ghp_|github_pat_|glpat-|token:\s*\S{16,}|password:\s*\S"
)


def _rules(objects: tuple[Manifest, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in {"ClusterRole", "Role"}:
            for rule in obj.get("rules", []):
                yield f"{obj['kind']}/{obj['metadata']['name']}", rule


def rbac_violations(objects: tuple[Manifest, ...] | list[Manifest]) -> list[str]:
    """Every grant beyond get/list/watch on the kinds the exporter watches."""
    found = []
    for where, rule in _rules(tuple(objects)):
        found += [f"{where}: verb {v}" for v in sorted(set(rule.get("verbs", [])) - READ_VERBS)]
        found += [f"{where}: {key}" for key in ("nonResourceURLs", "resourceNames") if key in rule]
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                if (group, resource) not in WATCHED:
                    found.append(f"{where}: {group}/{resource}")
    return found


@pytest.mark.parametrize("example", example_names())
def test_rbac_reads_flux_kinds_and_nothing_else(example: str) -> None:
    assert rbac_violations(render_example(example)) == []


@pytest.mark.parametrize(
    ("rule", "violation"),
    [
        (
            {
                "apiGroups": ["helm.toolkit.fluxcd.io"],
                "resources": ["helmreleases"],
                "verbs": ["patch"],
            },
            "verb patch",
        ),
        ({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}, "/secrets"),
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, "verb *"),
        ({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, "nonResourceURLs"),
    ],
)
def test_rbac_policy_catches_a_wider_grant(rule: dict[str, Any], violation: str) -> None:
    objects = copy.deepcopy(list(render_example("defaults")))
    next(o for o in objects if o["kind"] == "ClusterRole")["rules"].append(rule)
    assert any(violation in v for v in rbac_violations(objects))


@pytest.mark.parametrize("example", ["defaults", "tenant"])
def test_rbac_covers_every_kind_the_exporter_watches(example: str) -> None:
    granted = {
        (group, resource)
        for _, rule in _rules(render_example(example))
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        if set(rule["verbs"]) >= READ_VERBS
    }
    assert granted == WATCHED


def test_tenant_gets_a_role_in_its_namespace_only() -> None:
    objects = render_example("tenant")
    kinds = {o["kind"] for o in objects}
    assert "ClusterRole" not in kinds
    assert "ClusterRoleBinding" not in kinds
    roles = [o for o in objects if o["kind"] in {"Role", "RoleBinding"}]
    assert {o["metadata"]["namespace"] for o in roles} == {"team-a"}
    (binding,) = [o for o in roles if o["kind"] == "RoleBinding"]
    assert binding["subjects"][0]["namespace"] == "fluxwatch"  # the exporter's own namespace


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def pod_violations(objects: tuple[Manifest, ...] | list[Manifest]) -> list[str]:
    """Every way a workload's pods are less locked down than the chart promises."""
    found = []
    for name, pod in pod_specs(objects):
        pod_context = pod.get("securityContext", {})
        found += [f"{name}: {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
        found += [
            f"{name}: hostPath {v['name']}" for v in pod.get("volumes", []) if "hostPath" in v
        ]
        for container in _containers(pod):
            where = f"{name}/{container['name']}"
            context = container.get("securityContext", {})
            effective = {**pod_context, **context}
            capabilities = context.get("capabilities", {})
            checks = {
                "runAsNonRoot": effective.get("runAsNonRoot") is True,
                "runAsUser": effective.get("runAsUser", 0) != 0,
                "readOnlyRootFilesystem": context.get("readOnlyRootFilesystem") is True,
                "allowPrivilegeEscalation": context.get("allowPrivilegeEscalation") is False,
                "privileged": context.get("privileged", False) is False,
                "capabilities.drop": capabilities.get("drop") == ["ALL"],
                "capabilities.add": not capabilities.get("add"),
                "seccompProfile": effective.get("seccompProfile", {}).get("type")
                == "RuntimeDefault",
            }
            found += [f"{where}: {key}" for key, ok in checks.items() if not ok]
    return found


@pytest.mark.parametrize("example", example_names())
def test_every_container_is_non_root_read_only_without_capabilities(example: str) -> None:
    assert pod_violations(render_example(example)) == []


@pytest.mark.parametrize(
    ("change", "violation"),
    [
        ({"readOnlyRootFilesystem": False}, "readOnlyRootFilesystem"),
        ({"capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}, "capabilities.add"),
        ({"runAsUser": 0}, "runAsUser"),
        ({"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
        ({"seccompProfile": {"type": "Unconfined"}}, "seccompProfile"),
    ],
)
def test_pod_policy_catches_a_weaker_container(change: dict[str, Any], violation: str) -> None:
    objects = copy.deepcopy(list(render_example("defaults")))
    workload = next(o for o in objects if o["kind"] == "StatefulSet")
    workload["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(change)
    assert any(v.endswith(violation) for v in pod_violations(objects))


@pytest.mark.parametrize("example", example_names())
def test_writable_paths_are_volumes(example: str) -> None:
    """With a read-only root filesystem, /tmp (and the bridge's state) must be mounted."""
    for name, pod in pod_specs(render_example(example)):
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name
            assert not mounts["/tmp"].get("readOnly"), name
            if container["name"] == "bridge":
                assert not mounts["/var/lib/fluxwatch"].get("readOnly"), name


@pytest.mark.parametrize("example", example_names())
def test_no_secret_value_inline(example: str) -> None:
    objects = render_example(example)
    assert "Secret" not in {o["kind"] for o in objects}, "secrets are referenced, never created"
    for obj in objects:
        assert not SECRET_SHAPES.search(repr(obj)), f"{obj['kind']}/{obj['metadata']['name']}"
    for name, pod in pod_specs(objects):
        for container in _containers(pod):
            for env in container.get("env", []):
                assert "valueFrom" in env or not re.search(
                    r"token|secret|password|key", env["name"], re.I
                ), f"{name}: {env['name']}"
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"], name


def test_secret_shapes_are_recognised() -> None:
    """The pattern above is live for the secrets fluxwatch handles."""
    for leaked in (
        "secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "token: xoxb-1234-5678-abcdefabcdef",
        "password: hunter2",
        "client-key-data: -----BEGIN EC PRIVATE KEY-----",
    ):
        assert SECRET_SHAPES.search(leaked), leaked
