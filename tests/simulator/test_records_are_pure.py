"""Pure record builders: revision formats, Kustomization history upserts, Helm history trims."""

from __future__ import annotations

import re
from typing import Any

import pytest

from simulator import records
from simulator.model import Obj


def obj(kind: str, **extra: Any) -> Obj:
    return Obj(cluster="c", kind=kind, namespace="ns", name="app", interval=60.0, extra=extra)


@pytest.mark.parametrize(
    ("kind", "extra", "pattern"),
    [
        ("GitRepository", {"branch": "main"}, r"main@sha1:[0-9a-f]{40}"),
        ("OCIRepository", {"tag": "latest"}, r"latest@sha256:[0-9a-f]{64}"),
        ("OCIRepository", {"semver": True}, r"1\.7\.0@sha256:[0-9a-f]{64}"),
        ("Bucket", {}, r"sha256:[0-9a-f]{64}"),
        ("HelmRepository", {}, r"sha256:[0-9a-f]{64}"),
        ("ImageRepository", {}, r"1\.7\.0"),
    ],
    ids=["git", "oci-tag", "oci-semver", "bucket", "helmrepo", "image-tag"],
)
def test_revision_formats(kind: str, extra: dict[str, Any], pattern: str) -> None:
    revision = records.source_revision(1, obj(kind, **extra), 7)
    assert re.fullmatch(pattern, revision)
    assert records.source_revision(1, obj(kind, **extra), 7) == revision
    assert (
        records.source_revision(2, obj(kind, **extra), 7) != revision or kind == "ImageRepository"
    )


def test_oci_chart_version_carries_twelve_hex_of_the_digest() -> None:
    source = obj("OCIRepository", semver=True)
    source.upstream = 3
    release = obj("HelmRelease")
    release.source = source
    assert re.fullmatch(r"1\.3\.0\+[0-9a-f]{12}", records.chart_version(1, release))


def test_kustomization_history_upserts_by_digest_and_status() -> None:
    ks = obj("Kustomization")
    ks.last_duration = 1.5
    records.record_ks_history(ks, "rev-a", 100.0, "ReconciliationSucceeded")
    records.record_ks_history(ks, "rev-a", 200.0, "ReconciliationSucceeded")
    records.record_ks_history(ks, "rev-b", 300.0, "HealthCheckFailed")
    records.record_ks_history(ks, "rev-a", 400.0, "ReconciliationSucceeded")
    assert [(h["metadata"]["revision"], h["totalReconciliations"]) for h in ks.history] == [
        ("rev-a", 3),
        ("rev-b", 1),
    ]
    assert ks.history[0]["firstReconciled"] == "1970-01-01T00:01:40Z"
    assert ks.history[0]["lastReconciled"] == "1970-01-01T00:06:40Z"
    assert ks.history[0]["lastReconciledDuration"] == "1.5s"
    for i in range(10):
        records.record_ks_history(ks, f"rev-{i}", 500.0 + i, "ReconciliationSucceeded")
    assert len(ks.history) == 5


@pytest.mark.parametrize(
    ("statuses", "kept"),
    [
        (["deployed", "superseded"], ["deployed", "superseded"]),
        (["failed"] * 4 + ["deployed", "superseded"], ["failed"] * 4 + ["deployed"]),
        (["failed"] * 7 + ["deployed"], ["failed"] * 4 + ["deployed"]),
        (["failed"] * 7, ["failed"] * 5),
    ],
    ids=["healthy", "four-failures", "many-failures", "never-deployed"],
)
def test_helm_history_keeps_the_current_release(statuses: list[str], kept: list[str]) -> None:
    history: list[dict[str, Any]] = [{"status": s, "version": i} for i, s in enumerate(statuses)]
    records.trim_release_history(history)
    assert [h["status"] for h in history] == kept
