"""Per-kind derivation comes from one table keyed by kind; an unknown kind is "unknown", never
"ready"; the last attempt is exported only where the status records every run, on every API
version a cluster may serve."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exporter.kindfields import EXTRACTORS
from exporter.kinds import KINDS
from exporter.status import derive, parse_time
from tests.exporter import objects as o

T_RUN = "2026-01-10T12:00:00Z"


def test_every_watched_kind_has_exactly_one_extractor() -> None:
    assert set(EXTRACTORS) == {k.kind for k in KINDS}


@pytest.mark.parametrize(
    ("kind", "obj", "status", "reason", "problems"),
    [
        (
            "Widget",  # a kind the exporter has no entry for, without a status
            {"metadata": {"name": "w", "namespace": "ns", "uid": "u1"}},
            "unknown",
            "NoReadyCondition",
            ("missing_status",),
        ),
        (
            "Widget",
            {"metadata": {"name": "w", "namespace": "ns", "uid": "u1"}, "status": {}},
            "unknown",
            "NoReadyCondition",
            (),
        ),
        (
            "Alert",  # v1beta3 has no status at all: nothing is missing, nothing can fail
            {"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "metadata": {"name": "a"}},
            "ready",
            "",
            ("missing_uid",),
        ),
        (
            "Kustomization",
            {"metadata": {"name": "k", "namespace": "ns", "uid": "u2"}},
            "unknown",
            "NoReadyCondition",
            ("missing_status",),
        ),
    ],
    ids=["unknown-kind-no-status", "unknown-kind-empty-status", "alert-v1beta3", "ks-no-status"],
)
def test_status_of_objects_without_conditions(
    kind: str, obj: dict[str, Any], status: str, reason: str, problems: tuple[str, ...]
) -> None:
    derived, found = derive(kind, obj)
    assert (derived.status, derived.reason) == (status, reason)
    assert found == problems
    # Never both: a status missing where one belongs is not a healthy object.
    assert not (derived.status == "ready" and "missing_status" in found)


def _ks_current() -> dict[str, Any]:
    obj = o.kustomization()
    obj["status"]["history"][0]["lastReconciled"] = T_RUN
    return obj


def _ks_legacy() -> dict[str, Any]:
    obj = o.kustomization()
    obj["apiVersion"] = "kustomize.toolkit.fluxcd.io/v1beta2"
    del obj["status"]["history"]  # kustomize-controller before Flux 2.7 keeps no history
    return obj


def _ks_v1_before_history() -> dict[str, Any]:
    obj = o.kustomization()
    del obj["status"]["history"]  # Flux 2.0-2.6 serve v1 without history
    return obj


def _ks_legacy_reconciling() -> dict[str, Any]:
    obj = _ks_legacy()
    obj["status"]["conditions"].append(o.cond("Reconciling", "True", "Progressing", at=T_RUN))
    obj["status"]["lastHandledReconcileAt"] = T_RUN
    return obj


def _helmrelease(version: str) -> dict[str, Any]:
    obj = o.helm_release()
    obj["apiVersion"] = f"helm.toolkit.fluxcd.io/{version}"
    return obj


def _image_repository() -> dict[str, Any]:
    obj = o.image_repository()
    obj["status"]["lastScanResult"]["scanTime"] = T_RUN
    return obj


def _automation() -> dict[str, Any]:
    obj = o.ready(o.base("ImageUpdateAutomation", "auto"), "Succeeded")
    obj["spec"]["sourceRef"] = {"kind": "GitRepository", "name": "app"}
    obj["status"]["lastAutomationRunTime"] = T_RUN
    return obj


def _git_legacy() -> dict[str, Any]:
    obj = copy.deepcopy(o.git_repository())
    obj["apiVersion"] = "source.toolkit.fluxcd.io/v1beta2"
    return obj


LAST_ATTEMPT = [
    ("kustomization-v1-history", "Kustomization", _ks_current(), T_RUN),
    ("kustomization-v1-before-flux-2.7", "Kustomization", _ks_v1_before_history(), None),
    ("kustomization-v1beta2", "Kustomization", _ks_legacy(), None),
    # A condition transition or a handled manual request is not every run: still unknown.
    ("kustomization-v1beta2-reconciling", "Kustomization", _ks_legacy_reconciling(), None),
    ("helmrelease-v2", "HelmRelease", _helmrelease("v2"), None),
    ("helmrelease-v2beta2", "HelmRelease", _helmrelease("v2beta2"), None),
    ("gitrepository-v1", "GitRepository", o.git_repository(), None),
    ("gitrepository-v1beta2", "GitRepository", _git_legacy(), None),
    ("imagerepository", "ImageRepository", _image_repository(), T_RUN),
    ("imageupdateautomation", "ImageUpdateAutomation", _automation(), T_RUN),
    ("canary", "Canary", o.canary(), None),
]


@pytest.mark.parametrize(
    ("kind", "obj", "expected"), [c[1:] for c in LAST_ATTEMPT], ids=[c[0] for c in LAST_ATTEMPT]
)
def test_last_attempt_only_where_every_run_is_recorded(
    kind: str, obj: dict[str, Any], expected: str | None
) -> None:
    derived, _ = derive(kind, obj)
    assert derived.last_attempt == (None if expected is None else parse_time(expected))
