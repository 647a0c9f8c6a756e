"""Recording rules: the fleet-scale aggregates dashboards and alerts read, precomputed.

Names follow Prometheus' ``level:metric:operations`` convention: ``level`` lists the labels kept
(``fleet`` when none), ``metric`` is the source metric (counters without ``_total``), and
``operations`` the functions applied, newest last. docs/alerts.md lists every name; dashboards
query these instead of re-aggregating 50,000 objects' series on every refresh.
"""

from __future__ import annotations

from alerts.model import Query, RecordingRule, RuleGroup, re_
from alerts.settings import AlertSettings
from catalogue import bridge as br
from catalogue import exporter as ex

LATENCY_QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))


def _rule(q: Query, record: str, expr: str, meaning: str) -> RecordingRule:
    return RecordingRule(record, expr, meaning, q.take())


def exporter_recording(s: AlertSettings) -> list[RecordingRule]:
    q = Query(s)
    cl = q.cl
    out: list[RecordingRule] = []
    res = ex.CLUSTER_RESOURCES.name
    out.append(
        _rule(
            q,
            f"{cl}_kind_status:{res}:sum",
            f"sum by ({cl}, kind, status) ({q.exporter(ex.CLUSTER_RESOURCES)})",
            "Objects per cluster, kind and status (exporter shards and replicas summed away).",
        )
    )
    out.append(
        _rule(
            q,
            f"kind_status:{res}:sum",
            f"sum by (kind, status) ({q.exporter(ex.CLUSTER_RESOURCES)})",
            "Objects per kind and status across the fleet.",
        )
    )
    failing = q.exporter(ex.CLUSTER_RESOURCES, status=re_("failing|stalled"))
    out.append(
        _rule(
            q,
            f"{cl}:{res}_failing:sum",
            f"sum by ({cl}) ({failing})",
            "Failing or stalled objects per cluster.",
        )
    )
    failing = q.exporter(ex.CLUSTER_RESOURCES, status=re_("failing|stalled"))
    out.append(
        _rule(
            q,
            f"fleet:{res}_failing:sum",
            f"sum({failing})",
            "Failing or stalled objects in the whole fleet.",
        )
    )
    reach = ex.CLUSTER_REACHABLE.name
    out.append(
        _rule(
            q,
            f"fleet:{reach}:count",
            f"count(max by ({cl}) ({q.exporter(ex.CLUSTER_REACHABLE)}))",
            "Clusters the exporters know of.",
        )
    )
    out.append(
        _rule(
            q,
            f"fleet:{reach}:sum",
            f"sum(max by ({cl}) ({q.exporter(ex.CLUSTER_REACHABLE)}))",
            "Clusters whose API server answers.",
        )
    )
    status = ex.RESOURCE_STATUS.name
    not_ready = q.exporter(ex.RESOURCE_STATUS, status=re_("failing|stalled|progressing|unknown"))
    out.append(
        _rule(
            q,
            f"{cl}_root:{status}_not_ready:count",
            f"count by ({cl}, root_kind, root_namespace, root_name, root_reason) ({not_ready})",
            "Objects not ready (suspended excepted) per cluster and root cause: one broken "
            "source with twenty blocked dependents is one row counting 21.",
        )
    )
    trans = ex.TRANSITIONS.family
    out.append(
        _rule(
            q,
            f"kind_to:{trans}:rate5m",
            f"sum by (kind, to) (rate({q.exporter(ex.TRANSITIONS)}[5m]))",
            "Status changes per second by kind and new status.",
        )
    )
    revs = ex.REVISIONS_APPLIED.family
    out.append(
        _rule(
            q,
            f"tenant_kind:{revs}:rate1h",
            f"sum by (tenant, kind) (rate({q.exporter(ex.REVISIONS_APPLIED)}[1h]))",
            "Revisions applied per second by tenant and kind (deploy frequency).",
        )
    )
    for metric, window in ((ex.APPLY_LATENCY, "1h"), (ex.TIME_TO_RECOVER, "1d")):
        for level in ("kind", "tenant"):
            bucket = f"{level}_le:{metric.name}_bucket:rate{window}"
            out.append(
                _rule(
                    q,
                    bucket,
                    f"sum by ({level}, le) (rate({q.exporter(metric, '_bucket')}[{window}]))",
                    f"Bucket rates of {metric.name} per {level}, the input of the quantiles below.",
                )
            )
            for tag, quantile in LATENCY_QUANTILES:
                out.append(
                    _rule(
                        q,
                        f"{level}:{metric.name}:{tag}_rate{window}",
                        f"histogram_quantile({quantile}, {bucket})",
                        f"{tag} of {metric.name} per {level} over {window}.",
                    )
                )
    return out


def bridge_recording(s: AlertSettings) -> list[RecordingRule]:
    q = Query(s)
    out = [
        _rule(
            q,
            f"source:{br.EVENTS_RECEIVED.family}:rate5m",
            f"sum by (source) (rate({q.bridge(br.EVENTS_RECEIVED)}[5m]))",
            "Events stored per second by source (flux, alertmanager, transition).",
        ),
        _rule(
            q,
            f"destination_outcome:{br.DELIVERIES.family}:rate5m",
            f"sum by (destination, outcome) (rate({q.bridge(br.DELIVERIES)}[5m]))",
            "Delivery attempts per second by destination and outcome (delivered, retry, dead).",
        ),
        _rule(
            q,
            f"destination:{br.QUEUE_DEPTH.name}:max",
            f"max by (destination) ({q.bridge(br.QUEUE_DEPTH)})",
            "Undelivered notifications per destination.",
        ),
        _rule(
            q,
            f"destination:{br.OLDEST_PENDING_AGE.name}:max",
            f"max by (destination) ({q.bridge(br.OLDEST_PENDING_AGE)})",
            "Age of the oldest undelivered notification per destination.",
        ),
    ]
    attempt = br.DELIVERY_ATTEMPT_SECONDS
    bucket = f"destination_le:{attempt.name}_bucket:rate5m"
    out.append(
        _rule(
            q,
            bucket,
            f"sum by (destination, le) (rate({q.bridge(attempt, '_bucket')}[5m]))",
            f"Bucket rates of {attempt.name} per destination.",
        )
    )
    for tag, quantile in (("p50", "0.5"), ("p99", "0.99")):
        out.append(
            _rule(
                q,
                f"destination:{attempt.name}:{tag}_rate5m",
                f"histogram_quantile({quantile}, {bucket})",
                f"{tag} of one delivery attempt's duration per destination over 5m.",
            )
        )
    return out


def recording_groups(s: AlertSettings) -> list[RuleGroup]:
    return [
        RuleGroup("fluxwatch-recording", tuple(exporter_recording(s))),
        RuleGroup("fluxwatch-bridge-recording", tuple(bridge_recording(s))),
    ]
