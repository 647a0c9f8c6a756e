"""Status derivation: real-shaped objects -> status, reason, since and the derived fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exporter.status import derive, parse_duration, parse_time, revision_matches
from tests.exporter import objects as o


def _suspended(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["spec"]["suspend"] = True
    return obj


def _no_ready(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["status"]["conditions"] = [o.cond("ArtifactInStorage", "True", "Succeeded")]
    return obj


def _stalled_k() -> dict[str, Any]:
    obj = o.failing(o.kustomization(), "BuildFailed", retrying=False)
    obj["status"]["conditions"].append(
        o.cond("Stalled", "True", "InvalidPath", at="2026-01-10T10:05:00Z")
    )
    return obj


CASES = [
    (
        "git-ready-example",
        "GitRepository",
        o.example("gitrepository-ready.yaml"),
        "ready",
        "Succeeded",
    ),
    (
        "git-fetch-failed-example",
        "GitRepository",
        o.example("gitrepository-fetch-failed.yaml"),
        "failing",
        "GitOperationFailed",
    ),
    (
        "kustomization-ready-example",
        "Kustomization",
        o.example("kustomization-ready-with-history.yaml"),
        "ready",
        "ReconciliationSucceeded",
    ),
    (
        "helmrelease-ready-example",
        "HelmRelease",
        o.example("helmrelease-ready-with-history.yaml"),
        "ready",
        "TestSucceeded",
    ),
    (
        "helmrelease-stalled-example",
        "HelmRelease",
        o.example("helmrelease-stalled-test-failed.yaml"),
        "stalled",
        "RetriesExceeded",
    ),
    (
        "progressing",
        "Kustomization",
        o.progressing(o.kustomization()),
        "progressing",
        "Progressing",
    ),
    (
        "dependency-not-ready-is-failing",
        "Kustomization",
        o.failing(o.kustomization(), "DependencyNotReady"),
        "failing",
        "DependencyNotReady",
    ),
    ("stalled-wins-over-failing", "Kustomization", _stalled_k(), "stalled", "InvalidPath"),
    (
        "suspend-wins",
        "Kustomization",
        _suspended(o.failing(o.kustomization(), "BuildFailed")),
        "suspended",
        "BuildFailed",
    ),
    (
        "no-ready-condition",
        "GitRepository",
        _no_ready(o.git_repository()),
        "unknown",
        "NoReadyCondition",
    ),
    ("alert-without-status", "Alert", {**o.base("Alert", "a"), "status": None}, "ready", ""),
    ("canary-progressing", "Canary", o.canary(phase="Progressing"), "progressing", "Progressing"),
    ("canary-failed", "Canary", o.canary(phase="Failed"), "failing", "Failed"),
    ("canary-succeeded", "Canary", o.canary(phase="Succeeded"), "ready", "Succeeded"),
]


@pytest.mark.parametrize(
    ("kind", "obj", "status", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_status_and_reason(kind: str, obj: dict[str, Any], status: str, reason: str) -> None:
    derived, _ = derive(kind, obj)
    assert (derived.status, derived.reason) == (status, reason)


def test_since_is_the_deciding_condition_transition_time() -> None:
    derived, _ = derive("Kustomization", _stalled_k())
    assert derived.since == parse_time("2026-01-10T10:05:00Z")


def test_kustomization_fields_from_the_example() -> None:
    d, problems = derive("Kustomization", o.example("kustomization-ready-with-history.yaml"))
    assert problems == ()
    assert d.applied_revision == "master@sha1:450796ddb2ab6724ee1cc32a4be56da032d1cca0"
    assert d.source == ("GitRepository", "default", "podinfo")
    assert d.interval == 600
    assert d.inventory == 3
    assert d.last_success == parse_time("2025-08-15T11:12:00Z")  # history lastReconciled
    assert d.last_attempt == parse_time("2025-08-15T11:12:00Z")


def test_helmrelease_fields_from_the_examples() -> None:
    d, _ = derive("HelmRelease", o.example("helmrelease-ready-with-history.yaml"))
    assert d.applied_revision == "6.6.1+0cc9a8446c95"
    assert (d.chart_name, d.chart_app_version, d.last_action) == ("podinfo", "6.6.1", "upgrade")
    assert d.upstream[0] == ("HelmChart", "default", "default-podinfo")
    assert d.source == ("HelmRepository", "default", "podinfo")
    s, _ = derive("HelmRelease", o.example("helmrelease-stalled-test-failed.yaml"))
    assert (s.failures, s.install_failures, s.upgrade_failures) == (1, 1, None)


def test_source_artifact_and_generation_lag() -> None:
    d, _ = derive("GitRepository", o.example("gitrepository-fetch-failed.yaml"))
    assert d.artifact_size == 91318
    assert d.artifact_updated == parse_time("2022-02-14T11:23:36Z")
    assert d.generation_lag == 1
    assert d.offered_revision.startswith("master@sha1:132f4e71")


def test_url_credentials_never_reach_labels() -> None:
    obj = o.git_repository()
    obj["spec"]["url"] = "https://user:s3cret@git.example.com/repo.git"
    d, _ = derive("GitRepository", obj)
    assert d.url == "https://git.example.com/repo.git"


def test_image_and_canary_fields() -> None:
    p, _ = derive("ImagePolicy", o.image_policy(tag="2.0.0"))
    assert (p.latest_image, p.latest_tag) == ("ghcr.io/example/web", "2.0.0")
    r, _ = derive("ImageRepository", o.image_repository())
    assert r.tags == 42
    c, _ = derive("Canary", o.canary(weight=30))
    assert (c.phase, c.weight, c.failed_checks, c.interval) == ("Progressing", 30, 1, 60)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m0s", 300),
        ("1h", 3600),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("2.5s", 2.5),
        ("0", 0),
        ("5x", None),
        ("m", None),
    ],
    ids=["5m0s", "1h", "1m30s", "500ms", "2.5s", "zero", "bad-unit", "no-number"],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-06-22T10:15:37Z", 1687428937.0),
        ("2023-06-22T10:15:37.969587123-05:00", 1687446937.969587),
        ("2023-06-22 10:15", None),
        ("yesterday", None),
    ],
    ids=["utc", "nanoseconds-offset", "naive", "garbage"],
)
def test_rfc3339(text: str, expected: float | None) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("offered", "applied", "match"),
    [
        ("main@sha1:abc", "main@sha1:abc", True),
        ("main@sha1:abc", "main@sha1:def", False),
        ("6.6.1@sha256:0cc9a8446c95009e", "6.6.1+0cc9a8446c95", True),
        ("6.6.1@sha256:ffff", "6.6.1+0cc9a8446c95", False),
        ("6.0.3+2", "6.0.3", True),
        ("6.0.4", "6.0.3", False),
        ("", "6.0.3", False),
    ],
    ids=[
        "same",
        "different-sha",
        "oci-chart",
        "oci-other-digest",
        "values-generation",
        "version",
        "empty",
    ],
)
def test_revision_matches(offered: str, applied: str, match: bool) -> None:
    assert revision_matches(offered, applied) is match


def test_old_flux_helmrelease_v2beta1_records_the_applied_revision() -> None:
    obj = o.ready(o.base("HelmRelease", "legacy", "apps"), "ReconciliationSucceeded")
    obj["apiVersion"] = "helm.toolkit.fluxcd.io/v2beta1"
    obj["spec"]["chart"] = {
        "spec": {"chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "r"}}
    }
    obj["status"].update(
        lastAppliedRevision="1.2.3", lastAttemptedRevision="1.2.4", helmChart="apps/apps-legacy"
    )
    d, problems = derive("HelmRelease", obj)
    assert problems == ()
    assert (d.applied_revision, d.attempted_revision, d.api_version) == (
        "1.2.3",
        "1.2.4",
        "helm.toolkit.fluxcd.io/v2beta1",
    )


def test_old_source_with_obsolete_checksum_is_not_malformed() -> None:
    obj = o.git_repository()
    obj["apiVersion"] = "source.toolkit.fluxcd.io/v1beta2"
    obj["status"]["artifact"]["checksum"] = "0" * 64
    obj["status"]["url"] = "http://source-controller./gitrepository/flux-system/app/latest.tar.gz"
    d, problems = derive("GitRepository", obj)
    assert problems == ()
    assert d.status == "ready"
