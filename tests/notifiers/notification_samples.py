"""Notifications for provider tests: one per message kind, and hypothesis-generated ones.

Every message kind a chat destination renders (failing, stalled, recovered, rollout, grouped,
alert firing/resolved, unreachable cluster) has a fixed sample used by the golden files; the
strategy produces the awkward ones (huge messages, 500-cluster groups, unicode, markup).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from notifiers.model import Notification

T0 = 1_796_000_000.0
SHA = "802723078affd3eb2a3898630261ab3ca5d6dd40"
REPO = "https://github.com/example/fleet-infra.git"


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ev-1",
        "source": "transition",
        "type": "failing",
        "cluster": "prod-eu-1",
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "uid": "u-1",
        "status": "failing",
        "previous_status": "ready",
        "severity": "error",
        "reason": "HealthCheckFailed",
        "message": "Deployment/apps/podinfo: health check failed after 5m0s: timeout waiting for "
        "Ready",
        "revision": f"main@sha1:{SHA}",
        "previous_revision": "",
        "commit": SHA,
        "tenant": "",
        "labels": {},
        "annotations": {},
        "metadata": {"source_url": REPO},
        "root_cause": None,
        "latency_seconds": None,
        "received_at": T0,
        "occurred_at": T0,
    }
    base.update(fields)
    return base


def notification(
    *events: Mapping[str, Any],
    destination: str = "chat",
    total: int | None = None,
    clusters: tuple[str, ...] = (),
    created_at: float = T0 + 5,
) -> Notification:
    listed = list(events) or [event()]
    return Notification(
        id=1,
        destination=destination,
        group_key="g",
        idempotency_key="fw_0123456789abcdef0123456789abcdef",
        created_at=created_at,
        events=listed,
        total_events=total if total is not None else len(listed),
        object_keys=frozenset(
            f"{e['cluster']}/{e['kind']}/{e['namespace']}/{e['name']}" for e in listed
        ),
        clusters=clusters or tuple(sorted({str(e["cluster"]) for e in listed})),
    )


ROOT = {
    "kind": "GitRepository",
    "namespace": "flux-system",
    "name": "fleet-infra",
    "reason": "AuthenticationFailed",
}


def alert(status: str) -> dict[str, Any]:
    return event(
        source="alertmanager",
        type="alert",
        status=status,
        previous_status="",
        kind="HelmRelease",
        namespace="payments",
        name="api",
        uid="3f2a9c1e0b7d4a11",
        severity="critical",
        reason="FluxReconciliationFailing",
        message="HelmRelease payments/api has been failing for 15 minutes",
        revision="",
        commit="",
        labels={"alertname": "FluxReconciliationFailing", "severity": "critical"},
        metadata={"runbook_url": "https://runbooks.example.com/flux/reconciliation"},
    )


def kinds() -> dict[str, Notification]:
    """One notification per message kind, fixed, for golden files."""
    fleet = tuple(f"prod-{i:03d}" for i in range(37))
    return {
        "failing": notification(event()),
        "stalled": notification(
            event(
                type="stalled",
                status="stalled",
                reason="BuildFailed",
                message="kustomize build failed: accumulating resources: "
                "'/tmp/apps/missing.yaml' not found",
            )
        ),
        "recovered": notification(
            event(
                type="recovered",
                status="ready",
                previous_status="failing",
                severity="info",
                reason="ReconciliationSucceeded",
                message=f"Applied revision: main@sha1:{SHA}",
                occurred_at=T0 + 754,
            ),
            created_at=T0 + 760,
        ),
        "rollout": notification(
            event(
                type="revision_applied",
                status="ready",
                previous_status="ready",
                severity="info",
                reason="ReconciliationSucceeded",
                message=f"Applied revision: main@sha1:{SHA}",
                latency_seconds=42.0,
            )
        ),
        "grouped": notification(
            *[
                event(
                    id=f"ev-{i}",
                    cluster=c,
                    name="repo-apps" if i else "fleet-infra",
                    kind="Kustomization" if i else "GitRepository",
                    namespace="apps" if i else "flux-system",
                    reason="DependencyNotReady" if i else "AuthenticationFailed",
                    message="dependency 'flux-system/fleet-infra' is not ready"
                    if i
                    else "ssh: handshake failed: ssh: unable to authenticate",
                    root_cause=ROOT,
                    metadata={"source_url": REPO, "fleet_clusters": "500"},
                )
                for i, c in enumerate(fleet)
            ],
            total=37,
            clusters=fleet,
        ),
        "fleet-rollout": notification(
            event(
                source="rollout",
                type="fleet_rollout",
                cluster="*",
                status="progressing",
                previous_status="",
                severity="info",
                reason="FleetRolloutProgressing",
                message="Kustomization apps/podinfo rev 8027230: applied on 212/500 clusters, "
                "3 failing (prod-003, prod-011, prod-027)",
                metadata={
                    "source_url": REPO,
                    "commit": SHA,
                    "fleet_state": "pending",
                    "fleet_clusters": "500",
                    "applied": "212",
                    "failing": "3",
                    "failing_clusters": "prod-003,prod-011,prod-027",
                },
            )
        ),
        "alert-firing": notification(alert("firing")),
        "alert-resolved": notification(alert("resolved")),
        "unreachable": notification(
            event(
                type="cluster_unreachable",
                status="unreachable",
                kind="Cluster",
                namespace="",
                name="prod-eu-1",
                reason="APIUnreachable",
                message="GET https://10.0.0.1:6443/apis: connection refused",
                revision="",
                commit="",
                metadata={},
            )
        ),
    }


# ---- hypothesis: awkward but valid notifications ----

_MARKUP = st.sampled_from(
    ["<!channel>", "<@U123ABC>", "<!here>", "&amp;", "*bold*", "`x`", "```", "<https://x|y>", ">"]
)
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200
)  # any Unicode but lone surrogates, which intake refuses
_MESSAGE = st.one_of(
    _TEXT,
    st.lists(st.one_of(_MARKUP, _TEXT), max_size=20).map("".join),
    st.integers(min_value=3_000, max_value=120_000).map(lambda n: ("ä<&>" * n)[:n]),
)
_NAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?", fullmatch=True)
_STATUS = st.sampled_from(
    [
        ("failing", "failing", "ready"),
        ("stalled", "stalled", "ready"),
        ("recovered", "ready", "failing"),
        ("revision_applied", "ready", "ready"),
        ("cluster_unreachable", "unreachable", "reachable"),
        ("alert", "firing", ""),
        ("alert", "resolved", ""),
    ]
)


@st.composite
def notifications(draw: st.DrawFn) -> Notification:
    etype, status, previous = draw(_STATUS)
    n_clusters = draw(st.sampled_from([1, 2, 37, 500]))
    clusters = tuple(f"{draw(_NAME)}-{i}" for i in range(n_clusters))
    listed = min(n_clusters, draw(st.integers(min_value=1, max_value=100)))
    meta_keys = draw(st.lists(_TEXT, max_size=5, unique=True))
    root = draw(st.one_of(st.none(), st.just(ROOT)))
    events = [
        event(
            id=f"ev-{i}",
            source="alertmanager" if etype == "alert" else "transition",
            type=etype,
            status=status,
            previous_status=previous,
            cluster=clusters[i],
            name=draw(_NAME) if i == 0 else f"app-{i}",
            namespace=draw(_NAME),
            reason=draw(_TEXT),
            message=draw(_MESSAGE) if i == 0 else "short",
            labels={"alertname": draw(_TEXT)} if etype == "alert" else {},
            metadata={**{k: draw(_TEXT) for k in meta_keys}, "source_url": REPO},
            root_cause=root,
            latency_seconds=draw(st.one_of(st.none(), st.floats(0, 1e6))),
        )
        for i in range(listed)
    ]
    return notification(*events, total=n_clusters, clusters=clusters)


def reorder_metadata(n: Notification) -> Notification:
    """The same notification with every mapping's keys in reverse order."""

    def flip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: flip(value[k]) for k in reversed(list(value))}
        return value

    return Notification(
        id=n.id,
        destination=n.destination,
        group_key=n.group_key,
        idempotency_key=n.idempotency_key,
        created_at=n.created_at,
        events=[flip(e) for e in n.events],
        total_events=n.total_events,
        object_keys=n.object_keys,
        clusters=n.clusters,
    )
