"""Each alert about one Flux object (failing, stalled, fetch failing, retries exhausted, stale,
suspended too long, drift not converging), run by `promtool test rules` on the generated default
rules: not firing one evaluation before its `for:` has elapsed, firing with exactly these labels
and annotations once it has, and resolved after the condition clears.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alerts.alert_cases import (
    CART,
    CART_ROOT,
    WEB,
    Case,
    check_fires_after_for_and_resolves,
    obj,
    status,
)
from tests.alerts.promtool_cases import series

ROOT_WORDS = (
    "It is the root cause: objects blocked behind it (dependsOn, sources) do not alert on their "
    "own; cluster_root:flux_resource_status_not_ready:count counts them."
)
CANARY = obj("c1", "Canary", "search", "frontend")
REPO = obj("c2", "GitRepository", "payments", "podinfo")


CASES = [
    Case(
        "failing-helmrelease-through-retries",
        "FluxResourceFailing",
        [
            # failing, then Ready=Unknown while Flux retries (the exporter keeps the root cause),
            # then failing again: the for: does not restart
            series(
                "flux_resource_status",
                status(CART, "failing", "UpgradeFailed", CART_ROOT),
                "1x5 stale _ _ 1x22 stale",
            ),
            series(
                "flux_resource_status",
                status(CART, "progressing", "Progressing", CART_ROOT),
                "_x6 1 1 1 stale",
            ),
        ],
        14,
        15,
        32,
        {
            "cluster": "c1",
            "kind": "HelmRelease",
            "namespace": "checkout",
            "name": "cart",
            "reason": "UpgradeFailed",
            "root_kind": "HelmRelease",
            "root_namespace": "checkout",
            "root_name": "cart",
            "root_reason": "UpgradeFailed",
            "severity": "warning",
            "scope": "object",
            "threshold": "15m",
        },
        "HelmRelease checkout/cart on c1 has been failing for more than 15m: UpgradeFailed",
        "HelmRelease checkout/cart on c1 is not ready and Flux's last attempt failed with "
        "UpgradeFailed. " + ROOT_WORDS,
    ),
    Case(
        "failing-canary-own-threshold",
        "FluxResourceFailing",
        [
            series(
                "flux_resource_status",
                status(CANARY, "failing", "Failed", ("Canary", "search", "frontend", "Failed")),
                "1x12 stale",
            )
        ],
        9,
        10,
        14,
        {
            "cluster": "c1",
            "kind": "Canary",
            "namespace": "search",
            "name": "frontend",
            "reason": "Failed",
            "root_kind": "Canary",
            "root_namespace": "search",
            "root_name": "frontend",
            "root_reason": "Failed",
            "severity": "warning",
            "scope": "object",
            "threshold": "10m",
        },
        "Canary search/frontend on c1 has been failing for more than 10m: Failed",
        "Canary search/frontend on c1 is not ready and Flux's last attempt failed with Failed. "
        + ROOT_WORDS,
    ),
    Case(
        "source-fetch-failing",
        "FluxSourceFetchFailing",
        [
            series(
                "flux_resource_status",
                status(
                    REPO,
                    "failing",
                    "GitOperationFailed",
                    ("GitRepository", "payments", "podinfo", "GitOperationFailed"),
                ),
                "1x35 stale",
            )
        ],
        29,
        30,
        37,
        {
            "cluster": "c2",
            "kind": "GitRepository",
            "namespace": "payments",
            "name": "podinfo",
            "reason": "GitOperationFailed",
            "root_kind": "GitRepository",
            "root_namespace": "payments",
            "root_name": "podinfo",
            "root_reason": "GitOperationFailed",
            "severity": "warning",
            "scope": "object",
        },
        "GitRepository payments/podinfo on c2 cannot fetch for more than 30m: GitOperationFailed",
        "GitRepository payments/podinfo on c2 fails to fetch (GitOperationFailed); it still "
        "serves its last artifact, so new commits and chart versions do not reach the cluster. "
        + ROOT_WORDS,
    ),
    Case(
        "helmrelease-retries-exhausted",
        "FluxHelmReleaseRetriesExhausted",
        [
            series(
                "flux_resource_status",
                status(CART, "stalled", "RetriesExceeded", CART_ROOT),
                "1x3 stale",
            )
        ],
        0,
        1,
        5,
        {
            "cluster": "c1",
            "kind": "HelmRelease",
            "namespace": "checkout",
            "name": "cart",
            "reason": "RetriesExceeded",
            "severity": "critical",
            "scope": "object",
        },
        "HelmRelease checkout/cart on c1 exhausted its retries",
        "HelmRelease checkout/cart on c1 is stalled (RetriesExceeded): helm-controller stopped "
        "retrying the install or upgrade and waits for a change or a manual reset.",
    ),
    Case(
        "kustomization-stalled",
        "FluxResourceStalled",
        [
            series(
                "flux_resource_status",
                status(
                    WEB, "stalled", "InvalidPath", ("Kustomization", "apps", "web", "InvalidPath")
                ),
                "1x6 stale",
            )
        ],
        4,
        5,
        8,
        {
            "cluster": "c1",
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "web",
            "reason": "InvalidPath",
            "severity": "critical",
            "scope": "object",
        },
        "Kustomization apps/web on c1 is stalled: InvalidPath",
        "Kustomization apps/web on c1 is stalled (InvalidPath): Flux stopped retrying and will "
        "not try again until its spec or source changes.",
    ),
    Case(
        # interval 10m, last run at 0: past 3 intervals from 31m on, confirmed 10m later; a run
        # recorded at 45m resolves it
        "kustomization-stale",
        "FluxResourceStale",
        [
            series("flux_resource_last_attempt_timestamp_seconds", WEB, "0x44 2700x10"),
            series("flux_resource_interval_seconds", WEB, "600x55"),
            series(
                "flux_resource_info",
                {**WEB, "api_version": "kustomize.toolkit.fluxcd.io/v1"},
                "1x55",
            ),
            series("flux_resource_status", status(WEB, "ready", "ReconciliationSucceeded"), "1x55"),
        ],
        40,
        41,
        46,
        {
            "cluster": "c1",
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "web",
            "severity": "warning",
            "scope": "object",
        },
        "Kustomization apps/web on c1 has not reconciled for 3 intervals",
        "Kustomization apps/web on c1 has not recorded a reconcile (Kustomizations) or a success "
        "while not ready (other kinds) for 41m 0s, more than 3 times its interval: its "
        "controller may be stuck, overloaded or down.",
    ),
    Case(
        # the 7-day default, shortened: 10,000 one-minute evaluations cost 30 s of CPU
        "suspended-longer-than-threshold",
        "FluxResourceSuspendedTooLong",
        [
            series("flux_resource_status_since_timestamp_seconds", WEB, "0x140"),
            series(
                "flux_resource_status",
                status(WEB, "suspended", "ReconciliationSucceeded"),
                "1x130 stale",
            ),
        ],
        125,
        126,
        132,
        {
            "cluster": "c1",
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "web",
            "severity": "info",
            "scope": "object",
        },
        "Kustomization apps/web on c1 has been suspended for more than 2h",
        "Kustomization apps/web on c1 has been suspended for 2h 6m 0s: changes in Git do not "
        "reach the cluster, and a suspension meant for an incident is often forgotten.",
        ("suspended_longer_than=2h",),
    ),
    Case(
        "drift-not-converging",
        "FluxResourceDriftNotConverging",
        [
            series(
                "flux_resource_revision_drift",
                {**CART, "applied_revision": "6.5.0", "wanted_revision": "6.6.0"},
                "1x40 stale",
            ),
            series("flux_resource_revision_drift_since_timestamp_seconds", CART, "0x40 stale"),
        ],
        35,
        36,
        42,
        {
            "cluster": "c1",
            "kind": "HelmRelease",
            "namespace": "checkout",
            "name": "cart",
            "applied_revision": "6.5.0",
            "wanted_revision": "6.6.0",
            "severity": "warning",
            "scope": "object",
        },
        "HelmRelease checkout/cart on c1 has not applied 6.6.0 for more than 30m",
        "HelmRelease checkout/cart on c1 still runs 6.5.0 while 6.6.0 is available: the new "
        "revision does not converge.",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_alert_fires_after_for_and_resolves(case: Case, tmp_path: Path, promtool: str) -> None:
    check_fires_after_for_and_resolves(case, tmp_path, promtool)
