"""Cases that must never fire: an object blocked behind a failing source or a waiting
dependency (its root cause alerts instead), a healthy object that is progressing, series of
another job, fewer clusters than the fleet minimum, and a legacy Kustomization without run
history. Run by `promtool test rules` on the generated default rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alerts.alert_cases import CART, JOB, WEB, check_never_fires, fleet_cart, obj, status
from tests.alerts.promtool_cases import series

NEVER = [
    (
        # the HelmRelease waits on a failing HelmRepository: the source alerts, not its dependent
        "blocked-behind-a-failing-source",
        "FluxResourceFailing",
        [
            series(
                "flux_resource_status",
                status(
                    CART,
                    "failing",
                    "ArtifactFailed",
                    ("HelmRepository", "checkout", "cart-charts", "IndexationFailed"),
                ),
                "1x40",
            ),
            series(
                "flux_resource_status",
                status(
                    obj("c1", "HelmRepository", "checkout", "cart-charts"),
                    "failing",
                    "IndexationFailed",
                    ("HelmRepository", "checkout", "cart-charts", "IndexationFailed"),
                ),
                "1x40",
            ),
        ],
        40,
    ),
    (
        "healthy-progressing-object",
        "FluxResourceFailing",
        [
            series(
                "flux_resource_status",
                status(
                    CART,
                    "progressing",
                    "Progressing",
                    ("HelmRelease", "checkout", "cart", "Progressing"),
                ),
                "1x40",
            )
        ],
        40,
    ),
    (
        "blocked-only-by-a-waiting-dependency",
        "FluxResourceFailing",
        [
            series(
                "flux_resource_status",
                status(
                    WEB,
                    "failing",
                    "DependencyNotReady",
                    ("Kustomization", "flux-system", "infra", "DependencyNotReady"),
                ),
                "1x40",
            )
        ],
        40,
    ),
    (
        "exporter-without-exporter-selector-match",
        "FluxwatchExporterDown",
        [series("up", {"job": "other", "instance": "x:1"}, "0x10"), series("up", JOB, "1x10")],
        10,
    ),
    (
        "two-clusters-below-fleet-minimum",
        "FluxFleetResourceFailing",
        [fleet_cart("c1"), fleet_cart("c2")],
        15,
    ),
    (
        "legacy-kustomization-without-run-history",
        "FluxResourceStale",
        [
            series("flux_resource_last_attempt_timestamp_seconds", WEB, "0x60"),
            series("flux_resource_interval_seconds", WEB, "600x60"),
            series(
                "flux_resource_info",
                {**WEB, "api_version": "kustomize.toolkit.fluxcd.io/v1beta2"},
                "1x60",
            ),
            series("flux_resource_status", status(WEB, "ready", "ReconciliationSucceeded"), "1x60"),
        ],
        60,
    ),
]


@pytest.mark.parametrize(("name", "alert", "inputs", "at"), NEVER, ids=[n[0] for n in NEVER])
def test_alert_never_fires(
    name: str, alert: str, inputs: list[dict[str, str]], at: int, tmp_path: Path, promtool: str
) -> None:
    check_never_fires(alert, inputs, at, tmp_path, promtool)
