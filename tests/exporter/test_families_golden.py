"""Per kind: object -> exposition lines, compared with golden files (line order ignored).

Regenerate with ``FLUXWATCH_UPDATE_GOLDEN=1 pytest tests/exporter/test_families_golden.py`` and
review the diff.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from catalogue import exporter as catalogue
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import samples

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLUXWATCH_UPDATE_GOLDEN") == "1"


def _suspended(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["spec"]["suspend"] = True
    return obj


def _upgrade_failed() -> dict[str, Any]:
    obj = o.failing(o.helm_release(attempted="6.6.0"), "UpgradeFailed")
    obj["status"].update(failures=3, upgradeFailures=3, installFailures=0)
    return obj


def _drifted() -> dict[str, Any]:
    obj = o.helm_release()
    obj["spec"]["driftDetection"] = {"mode": "warn"}
    obj["status"]["conditions"].append(
        o.cond(
            "Drifted", "True", "DriftDetected", "Cluster state of release apps/web.v2 has drifted"
        )
    )
    return obj


def _bucket() -> dict[str, Any]:
    obj = o.git_repository("assets")
    obj["kind"] = "Bucket"
    obj["metadata"]["uid"] = "uid-bucket"
    obj["spec"] = {"interval": "1m", "endpoint": "minio.example.com", "bucketName": "assets"}
    obj["status"]["artifact"]["revision"] = "sha256:" + "7" * 64
    return obj


def _receiver() -> dict[str, Any]:
    obj = o.ready(o.base("Receiver", "github"), "Succeeded")
    obj["spec"] = {"type": "github", "resources": [], "secretRef": {"name": "token"}}
    obj["status"]["webhookPath"] = "/hook/" + "8" * 64
    return obj


def _alert() -> dict[str, Any]:
    obj = o.base("Alert", "slack")
    obj["spec"] = {"providerRef": {"name": "slack"}, "eventSources": []}
    del obj["status"]
    return obj


CASES: list[tuple[str, list[dict[str, Any]]]] = [
    ("gitrepository_ready", [o.example("gitrepository-ready.yaml")]),
    ("gitrepository_fetch_failed", [o.example("gitrepository-fetch-failed.yaml")]),
    ("kustomization_ready_history", [o.example("kustomization-ready-with-history.yaml")]),
    ("helmrelease_ready_history", [o.example("helmrelease-ready-with-history.yaml")]),
    ("helmrelease_stalled", [o.example("helmrelease-stalled-test-failed.yaml")]),
    (
        "kustomization_blocked_by_source",
        [
            o.failing(o.git_repository(revision=f"main@sha1:{o.SHA_B}"), "GitOperationFailed"),
            o.failing(
                o.kustomization(
                    attempted=f"main@sha1:{o.SHA_B}", **{"toolkit.fluxcd.io/tenant": "team-a"}
                ),
                "ArtifactFailed",
            ),
        ],
    ),
    (
        "kustomization_suspended",
        [_suspended(o.kustomization(**{"sharding.fluxcd.io/key": "shard1"}))],
    ),
    ("helmrelease_upgrade_failed", [o.helm_chart(version="6.6.0"), _upgrade_failed()]),
    ("helmrelease_drift_detected", [_drifted()]),
    ("helmchart_ready", [o.helm_chart()]),
    ("helmrepository_ready", [o.helm_repository()]),
    ("bucket_ready", [_bucket()]),
    ("imagerepository_ready", [o.image_repository()]),
    ("imagepolicy_ready", [o.image_policy()]),
    ("receiver_ready", [_receiver()]),
    ("alert_without_status", [_alert()]),
    ("canary_progressing", [o.canary()]),
]


def _lines(objs: list[dict[str, Any]]) -> list[str]:
    store = MetricStore(compat_info=True, clock=lambda: o.T0_UNIX)
    for obj in objs:
        store.upsert("c1", obj["kind"], obj)
    out = []
    for kd in store.clusters["c1"].kinds.values():
        for column in kd.columns:
            for line in column.values():
                out.extend(line.decode().splitlines())
    return sorted(out)


@pytest.mark.parametrize("objs", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_golden_exposition(objs: list[dict[str, Any]], request: pytest.FixtureRequest) -> None:
    name = request.node.callspec.id
    path = GOLDEN / f"{name}.prom"
    got = _lines(objs)
    if UPDATE:
        path.write_text("\n".join(got) + "\n")
    expected = sorted(line for line in path.read_text().splitlines() if line)
    assert got == expected
    samples("\n".join(got) + "\n")  # parses


def test_every_per_object_family_has_a_golden_line() -> None:
    text = "".join(p.read_text() for p in GOLDEN.glob("*.prom"))
    for spec in (*catalogue.PER_OBJECT, catalogue.GOTK_RESOURCE_INFO):
        assert f"\n{spec.name}{{" in "\n" + text, f"no golden line for {spec.name}"


@pytest.mark.parametrize("spec", catalogue.ALL, ids=[s.name for s in catalogue.ALL])
def test_names_follow_prometheus_conventions(spec: catalogue.MetricSpec) -> None:
    assert spec.name.startswith(("flux_", "gotk_", "fluxwatch_exporter_"))
    assert spec.name.endswith("_total") == (spec.type == "counter")
    if spec.per_object and spec is not catalogue.GOTK_RESOURCE_INFO:
        assert spec.labels[:4] == catalogue.IDENTITY_LABELS
    if spec.labels:
        assert "cluster" in spec.labels or spec in (*catalogue.SELF, *catalogue.ROLLOUT)
