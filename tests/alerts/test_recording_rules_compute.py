"""Every recording rule, evaluated by `promtool test rules` on exporter-shaped input: the
aggregates dashboards read are exactly these numbers (and a foreign job is left out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts.render import recording_rules
from alerts.settings import AlertSettings
from tests.alerts.promtool_cases import run_promtool, series

JOB = {"job": "fluxwatch", "instance": "exporter:9797"}
OTHER = {"job": "someone-else", "instance": "x:1"}
BRIDGE = {"job": "fluxwatch-bridge", "instance": "bridge:9095"}


def res(cluster: str, kind: str, status: str, labels: dict[str, str] = JOB) -> dict[str, str]:
    return {**labels, "cluster": cluster, "kind": kind, "status": status}


def hist(name: str, le: str, values: str) -> dict[str, str]:
    labels = {**JOB, "cluster": "c1", "kind": "Kustomization", "tenant": "payments", "le": le}
    return series(f"{name}_bucket", labels, values)


ROOT = {
    "root_kind": "GitRepository",
    "root_namespace": "flux-system",
    "root_name": "flux-system",
    "root_reason": "GitOperationFailed",
}

INPUTS = [
    series("flux_cluster_resources", res("c1", "HelmRelease", "failing"), "2x80"),
    series("flux_cluster_resources", res("c1", "HelmRelease", "ready"), "5x80"),
    series("flux_cluster_resources", res("c2", "HelmRelease", "stalled"), "1x80"),
    series("flux_cluster_resources", res("c2", "Kustomization", "ready"), "4x80"),
    series("flux_cluster_resources", res("c1", "HelmRelease", "failing", OTHER), "100x80"),
    series("flux_cluster_reachable", {**JOB, "cluster": "c1"}, "1x80"),
    series("flux_cluster_reachable", {**JOB, "cluster": "c2"}, "0x80"),
    series(
        "flux_resource_status",
        {
            **JOB,
            "cluster": "c1",
            "kind": "GitRepository",
            "namespace": "flux-system",
            "name": "flux-system",
            "status": "failing",
            "reason": "GitOperationFailed",
            **ROOT,
        },
        "1x80",
    ),
    series(
        "flux_resource_status",
        {
            **JOB,
            "cluster": "c1",
            "kind": "Kustomization",
            "namespace": "flux-system",
            "name": "infra",
            "status": "progressing",
            "reason": "Progressing",
            **ROOT,
        },
        "1x80",
    ),
    series(
        "flux_resource_status",
        {
            **JOB,
            "cluster": "c1",
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "web",
            "status": "ready",
            "reason": "ReconciliationSucceeded",
        },
        "1x80",
    ),
    series(
        "flux_resource_transitions_total",
        {
            **JOB,
            "cluster": "c1",
            "kind": "HelmRelease",
            "tenant": "checkout",
            "from": "ready",
            "to": "failing",
        },
        "0+60x80",
    ),
    series(
        "flux_resource_revisions_applied_total",
        {**JOB, "cluster": "c1", "kind": "Kustomization", "tenant": "payments"},
        "0+360x80",
    ),
    hist("flux_revision_apply_latency_seconds", "60", "0+30x80"),
    hist("flux_revision_apply_latency_seconds", "120", "0+60x80"),
    hist("flux_revision_apply_latency_seconds", "+Inf", "0+60x80"),
    hist("flux_resource_time_to_recover_seconds", "300", "0+600x80"),
    hist("flux_resource_time_to_recover_seconds", "600", "0+1200x80"),
    hist("flux_resource_time_to_recover_seconds", "+Inf", "0+1200x80"),
    series("fluxwatch_bridge_events_received_total", {**BRIDGE, "source": "flux"}, "0+120x20"),
    series(
        "fluxwatch_bridge_events_received_total",
        {**BRIDGE, "source": "flux", "instance": "bridge-2:9095"},
        "0+60x20",
    ),
    series(
        "fluxwatch_bridge_deliveries_total",
        {**BRIDGE, "destination": "oncall", "outcome": "delivered"},
        "0+30x20",
    ),
    series(
        "fluxwatch_bridge_deliveries_total",
        {**BRIDGE, "destination": "oncall", "outcome": "dead"},
        "0+6x20",
    ),
    series("fluxwatch_bridge_queue_depth", {**BRIDGE, "destination": "oncall"}, "7x20"),
    series(
        "fluxwatch_bridge_queue_depth",
        {**BRIDGE, "destination": "oncall", "instance": "bridge-2:9095"},
        "3x20",
    ),
    series(
        "fluxwatch_bridge_oldest_pending_age_seconds", {**BRIDGE, "destination": "oncall"}, "42x20"
    ),
    series(
        "fluxwatch_bridge_delivery_attempt_seconds_bucket",
        {**BRIDGE, "destination": "oncall", "le": "0.1"},
        "0+54x20",
    ),
    series(
        "fluxwatch_bridge_delivery_attempt_seconds_bucket",
        {**BRIDGE, "destination": "oncall", "le": "1"},
        "0+60x20",
    ),
    series(
        "fluxwatch_bridge_delivery_attempt_seconds_bucket",
        {**BRIDGE, "destination": "oncall", "le": "+Inf"},
        "0+60x20",
    ),
]

# record -> (eval minute, [(labels, value)]); rates: 1h at 60m, 1d at 72m (86,400 increase)
LATENCY = {"kind": "Kustomization", "tenant": "payments"}
EXPECTED: dict[str, tuple[int, list[tuple[dict[str, str], float]]]] = {
    "cluster_kind_status:flux_cluster_resources:sum": (
        5,
        [
            ({"cluster": "c1", "kind": "HelmRelease", "status": "failing"}, 2),
            ({"cluster": "c1", "kind": "HelmRelease", "status": "ready"}, 5),
            ({"cluster": "c2", "kind": "HelmRelease", "status": "stalled"}, 1),
            ({"cluster": "c2", "kind": "Kustomization", "status": "ready"}, 4),
        ],
    ),
    "kind_status:flux_cluster_resources:sum": (
        5,
        [
            ({"kind": "HelmRelease", "status": "failing"}, 2),
            ({"kind": "HelmRelease", "status": "ready"}, 5),
            ({"kind": "HelmRelease", "status": "stalled"}, 1),
            ({"kind": "Kustomization", "status": "ready"}, 4),
        ],
    ),
    "cluster:flux_cluster_resources_failing:sum": (
        5,
        [({"cluster": "c1"}, 2), ({"cluster": "c2"}, 1)],
    ),
    "fleet:flux_cluster_resources_failing:sum": (5, [({}, 3)]),
    "fleet:flux_cluster_reachable:count": (5, [({}, 2)]),
    "fleet:flux_cluster_reachable:sum": (5, [({}, 1)]),
    "cluster_root:flux_resource_status_not_ready:count": (5, [({"cluster": "c1", **ROOT}, 2)]),
    "kind_to:flux_resource_transitions:rate5m": (
        10,
        [({"kind": "HelmRelease", "to": "failing"}, 1)],
    ),
    "tenant_kind:flux_resource_revisions_applied:rate1h": (
        65,
        [({"tenant": "payments", "kind": "Kustomization"}, 6)],
    ),
}
EXPECTED.update(
    {
        "source:fluxwatch_bridge_events_received:rate5m": (10, [({"source": "flux"}, 3)]),
        "destination_outcome:fluxwatch_bridge_deliveries:rate5m": (
            10,
            [
                ({"destination": "oncall", "outcome": "delivered"}, 0.5),
                ({"destination": "oncall", "outcome": "dead"}, 0.1),
            ],
        ),
        "destination:fluxwatch_bridge_queue_depth:max": (10, [({"destination": "oncall"}, 7)]),
        "destination:fluxwatch_bridge_oldest_pending_age_seconds:max": (
            10,
            [({"destination": "oncall"}, 42)],
        ),
        "destination_le:fluxwatch_bridge_delivery_attempt_seconds_bucket:rate5m": (
            10,
            [
                ({"destination": "oncall", "le": "0.1"}, 0.9),
                ({"destination": "oncall", "le": "1"}, 1),
                ({"destination": "oncall", "le": "+Inf"}, 1),
            ],
        ),
        "destination:fluxwatch_bridge_delivery_attempt_seconds:p50_rate5m": (
            10,
            [({"destination": "oncall"}, 0.05555555555555556)],
        ),
        "destination:fluxwatch_bridge_delivery_attempt_seconds:p99_rate5m": (
            10,
            [({"destination": "oncall"}, 0.9099999999999999)],
        ),  # 0.91; promtool compares exactly
    }
)
for level in ("kind", "tenant"):
    key = {level: LATENCY[level]}
    EXPECTED[f"{level}_le:flux_revision_apply_latency_seconds_bucket:rate1h"] = (
        60,
        [
            ({**key, "le": "60"}, 0.5),
            ({**key, "le": "120"}, 1),
            ({**key, "le": "+Inf"}, 1),
        ],
    )
    EXPECTED[f"{level}:flux_revision_apply_latency_seconds:p50_rate1h"] = (60, [(key, 60)])
    EXPECTED[f"{level}:flux_revision_apply_latency_seconds:p90_rate1h"] = (60, [(key, 108)])
    EXPECTED[f"{level}:flux_revision_apply_latency_seconds:p99_rate1h"] = (60, [(key, 118.8)])
    EXPECTED[f"{level}_le:flux_resource_time_to_recover_seconds_bucket:rate1d"] = (
        72,
        [
            ({**key, "le": "300"}, 0.5),
            ({**key, "le": "600"}, 1),
            ({**key, "le": "+Inf"}, 1),
        ],
    )
    EXPECTED[f"{level}:flux_resource_time_to_recover_seconds:p50_rate1d"] = (72, [(key, 300)])
    EXPECTED[f"{level}:flux_resource_time_to_recover_seconds:p90_rate1d"] = (72, [(key, 540)])
    EXPECTED[f"{level}:flux_resource_time_to_recover_seconds:p99_rate1d"] = (72, [(key, 594)])


def test_every_recording_rule_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(r.record for r in recording_rules(AlertSettings()))


def _sample(record: str, labels: dict[str, str], value: float) -> dict[str, Any]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"labels": f"{record}{{{inner}}}", "value": value}


@pytest.mark.parametrize("record", sorted(EXPECTED))
def test_recording_rule_value(record: str, tmp_path: Path, promtool: str) -> None:
    minute, samples = EXPECTED[record]
    test = {
        "interval": "1m",
        "input_series": INPUTS,
        "promql_expr_test": [
            {
                "expr": record,
                "eval_time": f"{minute}m",
                "exp_samples": [_sample(record, labels, value) for labels, value in samples],
            }
        ],
    }
    run_promtool(promtool, tmp_path, [test])
