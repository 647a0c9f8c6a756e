"""Each alert about fluxwatch itself and what it watches (cluster unreachable, watches failing or
credentials rejected, bridge queue old or dead-lettering, exporter or bridge down), run by
`promtool test rules` on the generated default rules: not firing one evaluation before its
`for:` has elapsed, firing with exactly these labels and annotations once it has, and resolved
after the condition clears.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.alerts.alert_cases import BRIDGE, JOB, Case, check_fires_after_for_and_resolves
from tests.alerts.promtool_cases import series

WATCHES_FAILING = (
    "{cluster} answers, but the exporter has not finished listing its Flux kinds or its "
    "credentials are rejected: RBAC (403), an expired token (401) or an API server timing out. "
    "Its metrics are incomplete or stale."
)


CASES = [
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


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_alert_fires_after_for_and_resolves(case: Case, tmp_path: Path, promtool: str) -> None:
    check_fires_after_for_and_resolves(case, tmp_path, promtool)
