"""Each alert, run by `promtool test rules` on the generated default rules: not firing one
evaluation before its `for:` has elapsed, firing with exactly these labels and annotations once
it has, and resolved after the condition clears. Plus cases that must never fire.

Input series are what the exporter (job ``fluxwatch``) would serve; times in minutes from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts.rules import alert_names
from alerts.settings import AlertSettings, with_overrides
from tests.alerts.promtool_cases import RUNBOOKS, run_promtool, series

JOB = {"job": "fluxwatch", "instance": "exporter:9797"}
ROOT_WORDS = (
    "It is the root cause: objects blocked behind it (dependsOn, sources) do not alert on their "
    "own; cluster_root:flux_resource_status_not_ready:count counts them."
)
BRIDGE = {"job": "fluxwatch-bridge", "instance": "bridge:9095"}
ROLLOUT = {
    **JOB,
    "kind": "Kustomization",
    "namespace": "apps",
    "name": "web",
    "revision": "main@sha1:b",
}
WATCHES_FAILING = (
    "{cluster} answers, but the exporter has not finished listing its Flux kinds or its "
    "credentials are rejected: RBAC (403), an expired token (401) or an API server timing out. "
    "Its metrics are incomplete or stale."
)


def obj(cluster: str, kind: str, namespace: str, name: str) -> dict[str, str]:
    return {**JOB, "cluster": cluster, "kind": kind, "namespace": namespace, "name": name}


def status(o: dict[str, str], st: str, reason: str, root: tuple[str, str, str, str] | None = None):
    labels = {**o, "status": st, "reason": reason}
    if root is not None:
        labels.update(
            zip(("root_kind", "root_namespace", "root_name", "root_reason"), root, strict=True)
        )
    return labels


@dataclass(frozen=True)
class Case:
    id: str
    alert: str
    inputs: list[dict[str, str]]
    before: int  # minutes: still pending (or not yet true)
    at: int  # minutes: firing
    after: int  # minutes: resolved
    labels: dict[str, str]
    summary: str
    description: str
    overrides: tuple[str, ...] = ()  # settings for thresholds too long to step through


CART = obj("c1", "HelmRelease", "checkout", "cart")
CART_ROOT = ("HelmRelease", "checkout", "cart", "UpgradeFailed")
CANARY = obj("c1", "Canary", "search", "frontend")
REPO = obj("c2", "GitRepository", "payments", "podinfo")
WEB = obj("c1", "Kustomization", "apps", "web")


def fleet_cart(cluster: str) -> dict[str, str]:
    return series(
        "flux_resource_status",
        status(
            obj(cluster, "HelmRelease", "checkout", "cart"), "failing", "UpgradeFailed", CART_ROOT
        ),
        "1x20 stale",
    )


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
    Case(
        "cluster-unreachable",
        "FluxClusterUnreachable",
        [series("flux_cluster_reachable", {**JOB, "cluster": "c3"}, "0x6 1x5")],
        4,
        5,
        8,
        {"cluster": "c3", "severity": "critical", "scope": "cluster"},
        "Cluster c3 is unreachable from fluxwatch",
        "The exporter cannot reach the API server of c3: its Flux objects show their last known "
        "state and no alert about them can fire or resolve.",
    ),
    Case(
        "watches-failing",
        "FluxwatchExporterWatchesFailing",
        [
            series("flux_cluster_synced", {**JOB, "cluster": "c2"}, "0x12 1x5"),
            series("flux_cluster_reachable", {**JOB, "cluster": "c2"}, "1x17"),
        ],
        9,
        10,
        14,
        {"cluster": "c2", "severity": "warning", "scope": "exporter"},
        "fluxwatch cannot list or watch the Flux objects of c2",
        WATCHES_FAILING.format(cluster="c2"),
    ),
    Case(
        # the token expired after the first sync: synced stays 1, credentials are rejected
        "credentials-rejected",
        "FluxwatchExporterWatchesFailing",
        [
            series("flux_cluster_synced", {**JOB, "cluster": "c3"}, "1x17"),
            series("flux_cluster_reachable", {**JOB, "cluster": "c3"}, "1x17"),
            series("flux_cluster_auth_failed", {**JOB, "cluster": "c3"}, "1x12 0x5"),
        ],
        9,
        10,
        14,
        {"cluster": "c3", "severity": "warning", "scope": "exporter"},
        "fluxwatch cannot list or watch the Flux objects of c3",
        WATCHES_FAILING.format(cluster="c3"),
    ),
    Case(
        "bridge-queue-old",
        "FluxwatchBridgeQueueOld",
        [
            series(
                "fluxwatch_bridge_oldest_pending_age_seconds",
                {**BRIDGE, "destination": "payments/slack"},
                "0+60x25 0x5",
            )
        ],
        20,
        21,
        28,
        {"destination": "payments/slack", "severity": "warning", "scope": "bridge"},
        "fluxwatch bridge: notifications to payments/slack wait for more than 15m",
        "The oldest undelivered notification for payments/slack is 21m 0s old: the destination "
        "is down, rejecting with retries, rate-limiting or behind an open circuit breaker. "
        "Nothing is lost; the team hears late.",
    ),
    Case(
        "bridge-dead-lettering",
        "FluxwatchBridgeDeadLettering",
        [series("fluxwatch_bridge_dead_letters", {**BRIDGE, "destination": "oncall"}, "0 2x5 0x5")],
        1,
        2,
        8,
        {"destination": "oncall", "severity": "warning", "scope": "bridge"},
        "fluxwatch bridge: 2 notifications to oncall are dead",
        "2 notifications to oncall gave up (permanent error, too many attempts or too old): the "
        "team never received them. Fix the destination, then replay them with fluxwatch outbox "
        "replay --all-dead.",
    ),
    Case(
        "exporter-down",
        "FluxwatchExporterDown",
        [series("up", JOB, "0x6 1x5")],
        4,
        5,
        8,
        {
            "job": "fluxwatch",
            "instance": "exporter:9797",
            "severity": "critical",
            "scope": "exporter",
        },
        "fluxwatch exporter is down or not scraped",
        "Prometheus has no successful scrape of the fluxwatch exporter (exporter:9797): every "
        "Flux alert is silent while it is down.",
    ),
    Case(
        "bridge-down",
        "FluxwatchBridgeDown",
        [series("up", {"job": "fluxwatch-bridge", "instance": "bridge:9095"}, "0x6 1x5")],
        4,
        5,
        8,
        {
            "job": "fluxwatch-bridge",
            "instance": "bridge:9095",
            "severity": "critical",
            "scope": "bridge",
        },
        "fluxwatch bridge is down or not scraped",
        "Prometheus has no successful scrape of the fluxwatch bridge (bridge:9095): Flux events, "
        "alerts and transitions are not delivered while it is down.",
    ),
]


def _minutes(m: int) -> str:
    return f"{m}m"


def promtool_test(case: Case) -> dict[str, Any]:
    fired = {
        "exp_labels": case.labels,
        "exp_annotations": {
            "summary": case.summary,
            "description": case.description,
            "runbook_url": f"{RUNBOOKS}/{case.alert}.md",
        },
    }
    return {
        "interval": "1m",
        "input_series": case.inputs,
        "alert_rule_test": [
            {"eval_time": _minutes(case.before), "alertname": case.alert, "exp_alerts": []},
            {"eval_time": _minutes(case.at), "alertname": case.alert, "exp_alerts": [fired]},
            {"eval_time": _minutes(case.after), "alertname": case.alert, "exp_alerts": []},
        ],
    }


def test_every_alert_has_a_case() -> None:
    assert sorted({c.alert for c in CASES}) == alert_names()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_alert_fires_after_for_and_resolves(case: Case, tmp_path: Path, promtool: str) -> None:
    assert case.before < case.at < case.after
    settings = with_overrides(AlertSettings(), case.overrides)
    run_promtool(promtool, tmp_path, [promtool_test(case)], settings)


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
    test = {
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": _minutes(at), "alertname": alert, "exp_alerts": []}],
    }
    run_promtool(promtool, tmp_path, [test])
