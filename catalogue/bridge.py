"""Every metric family the notification bridge serves: name, help, type and label names.

Pure data (see the ``catalogue`` package): ``notifiers.metrics`` builds its prometheus-client
metrics from these specs, and dashboards/ and alerts/ read the names and label values from here.
"""

from __future__ import annotations

from catalogue.specs import MetricSpec

SOURCES: tuple[str, ...] = ("flux", "alertmanager", "transition", "rollout_report")
"""Values of the ``source`` label: where an event came in."""

REJECT_REASONS: tuple[str, ...] = (
    "malformed_json",
    "invalid_event",
    "bad_signature",
    "bad_token",
    "too_large",
    "storage",
)
"""Values of ``reason`` on ``fluxwatch_bridge_events_rejected_total``."""

SUPPRESS_REASONS: tuple[str, ...] = (
    "duplicate",
    "once_per_revision",
    "no_change",
    "muted",
    "unrouted",
    "cancelled_by_recovery",
)
"""Values of ``reason`` on ``fluxwatch_bridge_events_suppressed_total``."""

DELIVERY_OUTCOMES: tuple[str, ...] = ("delivered", "retry", "dead")
"""Values of ``outcome`` on ``fluxwatch_bridge_deliveries_total``."""

EVENTS_RECEIVED = MetricSpec(
    "fluxwatch_bridge_events_received_total",
    "Events accepted and durably stored, by source (flux, alertmanager, transition).",
    "counter",
    ("source",),
)
EVENTS_REJECTED = MetricSpec(
    "fluxwatch_bridge_events_rejected_total",
    "Payloads rejected at intake, by source and reason "
    "(malformed_json, invalid_event, bad_signature, bad_token, too_large, storage).",
    "counter",
    ("source", "reason"),
)
EVENTS_SUPPRESSED = MetricSpec(
    "fluxwatch_bridge_events_suppressed_total",
    "Stored events that produced no delivery, by reason "
    "(duplicate, once_per_revision, no_change, muted, unrouted).",
    "counter",
    ("reason",),
)
NOTIFICATIONS_CREATED = MetricSpec(
    "fluxwatch_bridge_notifications_created_total",
    "Notifications (one event or a group) created per destination.",
    "counter",
    ("destination",),
)
DELIVERIES = MetricSpec(
    "fluxwatch_bridge_deliveries_total",
    "Delivery attempts by destination and outcome (delivered, retry, dead).",
    "counter",
    ("destination", "outcome"),
)
DELIVERY_ATTEMPT_SECONDS = MetricSpec(
    "fluxwatch_bridge_delivery_attempt_seconds",
    "Duration of one delivery attempt.",
    "histogram",
    ("destination",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_COMMIT_BATCH = MetricSpec(
    "fluxwatch_bridge_outbox_commit_batch_size",
    "Operations per outbox transaction (group commit).",
    "histogram",
    (),
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
OUTBOX_STORE_UP = MetricSpec(
    "fluxwatch_bridge_outbox_store_up",
    "1 while the outbox can store events; 0 while its database is unreachable (intake answers "
    "503 and the bridge reconnects).",
    "gauge",
    (),
)
OUTBOX_STORE_RECONNECTS = MetricSpec(
    "fluxwatch_bridge_outbox_store_reconnects_total",
    "Times the outbox reconnected to its store after losing it (a PostgreSQL restart or failover).",
    "counter",
    (),
)
OUTBOX_BUSY_SECONDS = MetricSpec(
    "fluxwatch_bridge_outbox_busy_seconds_total",
    "Seconds the outbox writer spent in transactions on its one database connection; its rate "
    "is that connection's use (near 1: the writer is saturated, add replicas on PostgreSQL).",
    "counter",
    (),
)
OUTBOX_REPLICAS = MetricSpec(
    "fluxwatch_bridge_outbox_replicas",
    "Bridge replicas sharing this replica's PostgreSQL outbox that renewed their leases within "
    "the last lease period (this one included); absent with the embedded SQLite outbox.",
    "gauge",
    (),
)
OUTBOX_DESTINATIONS_OWNED = MetricSpec(
    "fluxwatch_bridge_outbox_destinations_owned",
    "Destinations whose lease this replica holds, so it alone delivers them now (PostgreSQL "
    "outbox; a fair share of the destinations among the live replicas).",
    "gauge",
    (),
)
OUTBOX_LEASE_TAKEOVERS = MetricSpec(
    "fluxwatch_bridge_outbox_lease_takeovers_total",
    "Destinations this replica took over because their holder's lease ran out (a replica died "
    "or lost the database); its in-flight notifications are sent again with the same "
    "idempotency key.",
    "counter",
    (),
)
OUTBOX_CLAIM_SECONDS = MetricSpec(
    "fluxwatch_bridge_outbox_claim_seconds",
    "Duration of one lease round: renewing this replica's destination leases and claiming free "
    "or expired ones (FOR UPDATE SKIP LOCKED), through the outbox writer's queue.",
    "histogram",
    (),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# Read from the outbox at scrape time, so they cannot drift from it ----------------------------

QUEUE_DEPTH = MetricSpec(
    "fluxwatch_bridge_queue_depth",
    "Deliveries not yet delivered (waiting for their group or for an attempt).",
    "gauge",
    ("destination",),
)
OLDEST_PENDING_AGE = MetricSpec(
    "fluxwatch_bridge_oldest_pending_age_seconds",
    "Age of the oldest undelivered delivery per destination.",
    "gauge",
    ("destination",),
)
DEAD_LETTERS = MetricSpec(
    "fluxwatch_bridge_dead_letters",
    "Notifications in the dead-letter state (replay with fluxwatch outbox replay).",
    "gauge",
    ("destination",),
)
CIRCUIT_OPEN = MetricSpec(
    "fluxwatch_bridge_circuit_open",
    "1 while the destination's circuit breaker is open.",
    "gauge",
    ("destination",),
)

COMMIT_STATUS_OUTCOMES: tuple[str, ...] = ("posted", "retry", "dead")
"""Values of ``outcome`` on ``fluxwatch_bridge_commit_statuses_total``."""

COMMIT_STATUS_SKIPS: tuple[str, ...] = (
    "no_commit",
    "unknown_repository",
    "other_host",
    "status_limit",
)
"""Values of ``reason`` on ``fluxwatch_bridge_commit_statuses_skipped_total``."""

COMMIT_STATUSES = MetricSpec(
    "fluxwatch_bridge_commit_statuses_total",
    "Commit status posts of fleet rollouts by destination and outcome (posted, retry, dead).",
    "counter",
    ("destination", "outcome"),
)
COMMIT_STATUSES_SKIPPED = MetricSpec(
    "fluxwatch_bridge_commit_statuses_skipped_total",
    "Rollouts a commit-status destination could not show, counted once per rollout: "
    "no_commit (the revision names no commit), unknown_repository, other_host (the source "
    "lives on another Git host), status_limit (the host's cap per commit and context).",
    "counter",
    ("destination", "reason"),
)

UPDATED: tuple[MetricSpec, ...] = (
    EVENTS_RECEIVED,
    EVENTS_REJECTED,
    EVENTS_SUPPRESSED,
    NOTIFICATIONS_CREATED,
    DELIVERIES,
    DELIVERY_ATTEMPT_SECONDS,
    OUTBOX_COMMIT_BATCH,
    OUTBOX_STORE_UP,
    OUTBOX_STORE_RECONNECTS,
    OUTBOX_BUSY_SECONDS,
    COMMIT_STATUSES,
    COMMIT_STATUSES_SKIPPED,
)
"""Updated where things happen (intake, routing, delivery, the outbox writer)."""

QUEUE: tuple[MetricSpec, ...] = (QUEUE_DEPTH, OLDEST_PENDING_AGE, DEAD_LETTERS, CIRCUIT_OPEN)
"""Computed from the outbox's view at scrape time."""

REPLICAS: tuple[MetricSpec, ...] = (
    OUTBOX_REPLICAS,
    OUTBOX_DESTINATIONS_OWNED,
    OUTBOX_LEASE_TAKEOVERS,
    OUTBOX_CLAIM_SECONDS,
)
"""Served only by a replica sharing a PostgreSQL outbox (notifiers/replicas.py)."""

ALL: tuple[MetricSpec, ...] = (*UPDATED, *QUEUE, *REPLICAS)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in ALL}
