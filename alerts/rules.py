"""The alerting rules: what pages whom, built from the metric catalogue.

Per-object alerts carry ``cluster`` (or the configured label), ``kind``, ``namespace``, ``name``
and ``reason``, plus ``severity`` and ``scope``; the shipped Alertmanager configuration
(``alerts.alertmanager``) inhibits ``scope="object"`` alerts under a fleet-level alert for the
same object, so one bad commit failing on 300 clusters pages once.
"""

from __future__ import annotations

from alerts.model import AlertingRule, Query, RuleGroup, eq, ne, nre, re_
from alerts.settings import FETCHING_SOURCE_KINDS, AlertSettings, format_duration
from catalogue import bridge as br
from catalogue import exporter as ex
from catalogue import prometheus as prom

# Reasons an object shows while it is simply working (or waiting on a neighbour): not a failure
# of its own. A retrying object keeps its last failure as root_reason (exporter root cause), so
# the failing test reads root_reason and does not flap with each retry.
NOT_A_FAILURE = (
    "",
    "Progressing",
    "ProgressingWithRetry",
    "DependencyNotReady",
    "NoReadyCondition",
)
NOT_READY_WHILE_FAILING = "failing|progressing|unknown"
ROOT_LABELS = "root_kind, root_namespace, root_name, root_reason"
CURRENT_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"


def lbl(name: str) -> str:
    return "{{ $labels." + name + " }}"


def _kinds_regex(kinds: tuple[str, ...] | list[str]) -> str:
    return "|".join(sorted(kinds))


def failing_objects(q: Query, kind_matcher: str) -> str:
    """Objects failing for their own reason, one series per object with ``reason`` and the
    ``root_*`` labels. Status flaps between failing and progressing on every retry, so it is
    aggregated away (the exporter keeps the failure in ``root_reason`` meanwhile).

    Only root causes alert: an object is kept when it is the root of some not-ready object's
    chain (its own, at least). A broken GitRepository with twenty Kustomizations blocked behind
    it is one alert, not twenty-one.
    """
    status = q.exporter(
        ex.RESOURCE_STATUS,
        kind=kind_matcher,
        status=re_(NOT_READY_WHILE_FAILING),
        root_reason=nre("|".join(NOT_A_FAILURE)),
    )
    roots = q.exporter(ex.RESOURCE_STATUS, root_name=ne(""))
    for label in ("kind", "namespace", "name"):
        roots = f'label_replace({roots}, "{label}", "$1", "root_{label}", "(.+)")'
    return (
        f"label_replace(max by ({q.identity()}, {ROOT_LABELS}) ({status}), "
        f'"reason", "$1", "root_reason", "(.+)")\n'
        f"  and on ({q.identity()}) {roots}"
    )


def _object_words(q: Query) -> str:
    return f"{lbl('kind')} {lbl('namespace')}/{lbl('name')} on {lbl(q.cl)}"


def _root_words() -> str:
    return (
        "It is the root cause: objects blocked behind it (dependsOn, sources) do not alert on "
        "their own; cluster_root:flux_resource_status_not_ready:count counts them."
    )


def object_alerts(s: AlertSettings) -> list[AlertingRule]:
    q = Query(s)
    out: list[AlertingRule] = []
    obj = _object_words(q)
    sources = list(FETCHING_SOURCE_KINDS)

    # Failing, with a threshold per kind: one rule per distinct threshold, same alert name; the
    # kinds on the default threshold are "every kind not listed with another one".
    by_threshold: dict[int, list[str]] = {}
    for kind, seconds in sorted(s.failing_for_kind.items()):
        if kind not in sources and seconds != s.failing_for:
            by_threshold.setdefault(seconds, []).append(kind)
    special = [k for ks in by_threshold.values() for k in ks]
    groups = [(seconds, re_(_kinds_regex(kinds))) for seconds, kinds in by_threshold.items()]
    groups.append((s.failing_for, nre(_kinds_regex(special + sources))))
    for seconds, matcher in sorted(groups):
        expr = failing_objects(q, matcher)
        out.append(
            AlertingRule(
                "FluxResourceFailing",
                expr,
                seconds,
                "warning",
                "object",
                f"{obj} has been failing for more than {format_duration(seconds)}: {lbl('reason')}",
                f"{obj} is not ready and Flux's last attempt failed with {lbl('reason')}. "
                + _root_words(),
                q.take(),
                # promtool rejects two rules of one name with the same labels in a group
                {"threshold": format_duration(seconds)},
            )
        )

    expr = failing_objects(q, re_(_kinds_regex(sources)))
    out.append(
        AlertingRule(
            "FluxSourceFetchFailing",
            expr,
            s.source_failing_for,
            "warning",
            "object",
            f"{obj} cannot fetch for more than {format_duration(s.source_failing_for)}: "
            f"{lbl('reason')}",
            f"{obj} fails to fetch ({lbl('reason')}); it still serves its last artifact, so "
            "new commits and chart versions do not reach the cluster. " + _root_words(),
            q.take(),
        )
    )

    id_ = q.identity()
    stalled = q.exporter(ex.RESOURCE_STATUS, status=eq("stalled"))
    retries = q.exporter(
        ex.RESOURCE_STATUS,
        kind=eq("HelmRelease"),
        status=eq("stalled"),
        reason=eq("RetriesExceeded"),
    )
    out.append(
        AlertingRule(
            "FluxHelmReleaseRetriesExhausted",
            f"max by ({id_}, reason) ({retries})",
            s.retries_exhausted_for,
            "critical",
            "object",
            f"HelmRelease {lbl('namespace')}/{lbl('name')} on {lbl(q.cl)} exhausted its retries",
            f"HelmRelease {lbl('namespace')}/{lbl('name')} on {lbl(q.cl)} is stalled "
            f"({lbl('reason')}): helm-controller stopped retrying the install or upgrade and "
            "waits for a change or a manual reset.",
            q.take(),
        )
    )
    stalled_other = q.exporter(
        ex.RESOURCE_STATUS, status=eq("stalled"), reason=ne("RetriesExceeded")
    )
    stalled_hr_other = q.exporter(
        ex.RESOURCE_STATUS,
        kind=ne("HelmRelease"),
        status=eq("stalled"),
        reason=eq("RetriesExceeded"),
    )
    del stalled
    out.append(
        AlertingRule(
            "FluxResourceStalled",
            f"max by ({id_}, reason) ({stalled_other} or {stalled_hr_other})",
            s.stalled_for,
            "critical",
            "object",
            f"{obj} is stalled: {lbl('reason')}",
            f"{obj} is stalled ({lbl('reason')}): Flux stopped retrying and will not try "
            "again until its spec or source changes.",
            q.take(),
        )
    )

    n = s.stale_intervals
    attempt = q.exporter(ex.RESOURCE_LAST_ATTEMPT, kind=eq("Kustomization"))
    interval_k = q.exporter(ex.RESOURCE_INTERVAL, kind=eq("Kustomization"))
    info_v1 = q.exporter(
        ex.RESOURCE_INFO, kind=eq("Kustomization"), api_version=eq(CURRENT_KUSTOMIZE_API)
    )
    suspended = q.exporter(ex.RESOURCE_STATUS, status=eq("suspended"))
    success = q.exporter(ex.RESOURCE_LAST_SUCCESS)
    interval = q.exporter(ex.RESOURCE_INTERVAL)
    not_ready = q.exporter(ex.RESOURCE_STATUS, status=nre("ready|suspended"))
    stale = (
        f"max by ({id_}) (\n"
        f"  (time() - {attempt} > {n} * {interval_k})\n"
        f"    and on ({id_}) {info_v1}\n"
        f"    unless on ({id_}) {suspended}\n"
        f"  or\n"
        f"  (time() - {success} > {n} * {interval})\n"
        f"    and on ({id_}) {not_ready}\n"
        f")"
    )
    out.append(
        AlertingRule(
            "FluxResourceStale",
            stale,
            s.stale_for,
            "warning",
            "object",
            f"{obj} has not reconciled for {n} intervals",
            f"{obj} has not recorded a reconcile (Kustomizations) or a success while not ready "
            f"(other kinds) for {{{{ $value | humanizeDuration }}}}, more than {n} times its "
            "interval: its controller may be stuck, overloaded or down.",
            q.take(),
        )
    )

    since = q.exporter(ex.RESOURCE_STATUS_SINCE)
    suspended = q.exporter(ex.RESOURCE_STATUS, status=eq("suspended"))
    out.append(
        AlertingRule(
            "FluxResourceSuspendedTooLong",
            f"max by ({id_}) (time() - {since} > {s.suspended_longer_than})\n"
            f"  and on ({id_}) {suspended}",
            s.settle_for,
            "info",
            "object",
            f"{obj} has been suspended for more than {format_duration(s.suspended_longer_than)}",
            f"{obj} has been suspended for {{{{ $value | humanizeDuration }}}}: changes in Git "
            "do not reach the cluster, and a suspension meant for an incident is often forgotten.",
            q.take(),
        )
    )

    drift = q.exporter(ex.RESOURCE_DRIFT)
    drift_since = q.exporter(ex.RESOURCE_DRIFT_SINCE)
    out.append(
        AlertingRule(
            "FluxResourceDriftNotConverging",
            f"max by ({id_}, applied_revision, wanted_revision) ({drift} == 1)\n"
            f"  and on ({id_}) (time() - {drift_since} > {s.drift_longer_than})",
            s.settle_for,
            "warning",
            "object",
            f"{obj} has not applied {lbl('wanted_revision')} for more than "
            f"{format_duration(s.drift_longer_than)}",
            f"{obj} still runs {lbl('applied_revision')} while {lbl('wanted_revision')} is "
            "available: the new revision does not converge.",
            q.take(),
        )
    )
    return out


def fleet_alerts(s: AlertSettings) -> list[AlertingRule]:
    q = Query(s)
    out: list[AlertingRule] = []
    failing = failing_objects(q, nre(""))
    out.append(
        AlertingRule(
            "FluxFleetResourceFailing",
            f"count by (kind, namespace, name, reason) ({failing})"
            f" >= {s.fleet_failing_min_clusters}",
            s.fleet_failing_for,
            "critical",
            "fleet",
            f"{lbl('kind')} {lbl('namespace')}/{lbl('name')} is failing on {{{{ $value }}}} "
            f"clusters: {lbl('reason')}",
            f"{lbl('kind')} {lbl('namespace')}/{lbl('name')} fails with {lbl('reason')} on "
            "{{ $value }} clusters at once, typically one bad commit or chart rolled out "
            "everywhere. The per-cluster alerts for it are inhibited while this one fires.",
            q.take(),
        )
    )
    # From flux_rollout_clusters: complete whatever --per-object says, summed over shards.
    lagging = q.exporter(ex.ROLLOUT_CLUSTERS, state=re_("pending|failing"))
    applied = q.exporter(ex.ROLLOUT_CLUSTERS, state=eq("applied"))
    by = "kind, namespace, name, revision"
    out.append(
        AlertingRule(
            "FluxFleetRolloutStalled",
            f"sum by ({by}) ({lagging}) > 0\n  and on ({by}) sum by ({by}) ({applied}) > 0",
            s.rollout_stalled_after,
            "warning",
            "fleet",
            f"Rollout of {lbl('revision')} to {lbl('kind')} {lbl('namespace')}/{lbl('name')} "
            "stalled on {{ $value }} clusters",
            f"{lbl('revision')} is applied by {lbl('kind')} {lbl('namespace')}/{lbl('name')} on "
            "some clusters but has been pending or failing for more than "
            f"{format_duration(s.rollout_stalled_after)} on {{{{ $value }}}} others.",
            q.take(),
        )
    )
    return out


def cluster_alerts(s: AlertSettings) -> list[AlertingRule]:
    q = Query(s)
    cl = q.cl
    reachable = q.exporter(ex.CLUSTER_REACHABLE)
    out = [
        AlertingRule(
            "FluxClusterUnreachable",
            f"max by ({cl}) ({reachable}) == 0",
            s.cluster_unreachable_for,
            "critical",
            "cluster",
            f"Cluster {lbl(cl)} is unreachable from fluxwatch",
            f"The exporter cannot reach the API server of {lbl(cl)}: its Flux objects show "
            "their last known state and no alert about them can fire or resolve.",
            q.take(),
        )
    ]
    synced = q.exporter(ex.CLUSTER_SYNCED)
    reachable = q.exporter(ex.CLUSTER_REACHABLE)
    auth = q.exporter(ex.CLUSTER_AUTH_FAILED)
    out.append(
        AlertingRule(
            "FluxwatchExporterWatchesFailing",
            f"max by ({cl}) ({synced}) == 0\n"
            f"  and on ({cl}) max by ({cl}) ({reachable}) == 1\n"
            f"or max by ({cl}) ({auth}) == 1",
            s.watches_failing_for,
            "warning",
            "exporter",
            f"fluxwatch cannot list or watch the Flux objects of {lbl(cl)}",
            f"{lbl(cl)} answers, but the exporter has not finished listing its Flux kinds or its "
            "credentials are rejected: RBAC (403), an expired token (401) or an API server "
            "timing out. Its metrics are incomplete or stale.",
            q.take(),
        )
    )
    return out


def _down(q: Query, selector: str, alert: str, what: str, seconds: int) -> AlertingRule:
    up = q.select(prom.UP, selector)
    return AlertingRule(
        alert,
        f"{up} == 0 or absent({up})",
        seconds,
        "critical",
        "exporter" if "Exporter" in alert else "bridge",
        f"fluxwatch {what} is down or not scraped",
        f"Prometheus has no successful scrape of the fluxwatch {what} "
        f"({lbl('instance')}): "
        + (
            "every Flux alert is silent while it is down."
            if "Exporter" in alert
            else "Flux events, alerts and transitions are not delivered while it is down."
        ),
        q.take(),
    )


def self_alerts(s: AlertSettings) -> list[AlertingRule]:
    q = Query(s)
    out = [
        _down(q, s.exporter_selector, "FluxwatchExporterDown", "exporter", s.exporter_down_for),
        _down(q, s.bridge_selector, "FluxwatchBridgeDown", "bridge", s.bridge_down_for),
    ]
    age = q.bridge(br.OLDEST_PENDING_AGE)
    out.append(
        AlertingRule(
            "FluxwatchBridgeQueueOld",
            f"max by (destination) ({age}) > {s.bridge_queue_age}",
            s.bridge_queue_for,
            "warning",
            "bridge",
            "fluxwatch bridge: notifications to {{ $labels.destination }} wait for more than "
            f"{format_duration(s.bridge_queue_age)}",
            "The oldest undelivered notification for {{ $labels.destination }} is "
            "{{ $value | humanizeDuration }} old: the destination is down, rejecting with "
            "retries, rate-limiting or behind an open circuit breaker. Nothing is lost; the team "
            "hears late.",
            q.take(),
        )
    )
    dead = q.bridge(br.DEAD_LETTERS)
    out.append(
        AlertingRule(
            "FluxwatchBridgeDeadLettering",
            f"max by (destination) ({dead}) > 0",
            s.bridge_dead_letters_for,
            "warning",
            "bridge",
            "fluxwatch bridge: {{ $value }} notifications to {{ $labels.destination }} are dead",
            "{{ $value }} notifications to {{ $labels.destination }} gave up (permanent error, "
            "too many attempts or too old): the team never received them. Fix the destination, "
            "then replay them with fluxwatch outbox replay --all-dead.",
            q.take(),
        )
    )
    return out


def alert_groups(s: AlertSettings) -> list[RuleGroup]:
    return [
        RuleGroup("fluxwatch-objects", tuple(object_alerts(s))),
        RuleGroup("fluxwatch-fleet", tuple(fleet_alerts(s) + cluster_alerts(s))),
        RuleGroup("fluxwatch-self", tuple(self_alerts(s))),
    ]


def alert_names(s: AlertSettings | None = None) -> list[str]:
    """Every alert name, sorted and unique (one runbook each)."""
    groups = alert_groups(s or AlertSettings())
    return sorted({r.alert for g in groups for r in g.rules if isinstance(r, AlertingRule)})
