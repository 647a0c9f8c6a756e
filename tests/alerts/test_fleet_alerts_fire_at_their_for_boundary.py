"""Each fleet-wide alert (one object failing on several clusters, a rollout stalled on some),
run by `promtool test rules` on the generated default rules: not firing one evaluation before
its `for:` has elapsed, firing with exactly these labels and annotations once it has, and
resolved after the condition clears.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alerts.alert_cases import JOB, Case, check_fires_after_for_and_resolves, fleet_cart
from tests.alerts.promtool_cases import series

ROLLOUT = {
    **JOB,
    "kind": "Kustomization",
    "namespace": "apps",
    "name": "web",
    "revision": "main@sha1:b",
}


CASES = [
    Case(
        "one-bad-release-on-three-clusters",
        "FluxFleetResourceFailing",
        [fleet_cart("c1"), fleet_cart("c2"), fleet_cart("c3")],
        4,
        5,
        22,
        {
            "kind": "HelmRelease",
            "namespace": "checkout",
            "name": "cart",
            "reason": "UpgradeFailed",
            "severity": "critical",
            "scope": "fleet",
        },
        "HelmRelease checkout/cart is failing on 3 clusters: UpgradeFailed",
        "HelmRelease checkout/cart fails with UpgradeFailed on 3 clusters at once, typically one "
        "bad commit or chart rolled out everywhere. The per-cluster alerts for it are inhibited "
        "while this one fires.",
    ),
    Case(
        # main@sha1:b is applied on one cluster, pending on one and failing on another for an
        # hour; then the failing one applies it and the last one catches up at 70m
        "rollout-stalled-on-two-clusters",
        "FluxFleetRolloutStalled",
        [
            series("flux_rollout_clusters", {**ROLLOUT, "state": "applied"}, "1x62 2x7 3x5"),
            series("flux_rollout_clusters", {**ROLLOUT, "state": "pending"}, "1x69 0x5"),
            series("flux_rollout_clusters", {**ROLLOUT, "state": "failing"}, "1x62 0x12"),
        ],
        59,
        60,
        71,
        {
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "web",
            "revision": "main@sha1:b",
            "severity": "warning",
            "scope": "fleet",
        },
        "Rollout of main@sha1:b to Kustomization apps/web stalled on 2 clusters",
        "main@sha1:b is applied by Kustomization apps/web on some clusters but has been pending "
        "or failing for more than 1h on 2 others.",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_alert_fires_after_for_and_resolves(case: Case, tmp_path: Path, promtool: str) -> None:
    check_fires_after_for_and_resolves(case, tmp_path, promtool)
