"""Every metric family the exporter serves: name, help, type and label names.

Pure data with no third-party imports (see the ``catalogue`` package): dashboards/ and alerts/
read metric names only from here, so a renamed metric breaks their build, not a dashboard. The
store derives its ``# HELP``/``# TYPE`` headers from these specs, the families in
``exporter.families`` render sample lines whose labels follow ``labels`` in order, and the
prometheus-client metrics (``exporter.selfmetrics``, ``exporter.kube.health``) are created from
them, so names, headers and lines cannot drift.
"""

from __future__ import annotations

from catalogue.specs import MetricSpec as MetricSpec
from catalogue.specs import MetricType as MetricType
from catalogue.specs import Stability as Stability

IDENTITY_LABELS: tuple[str, ...] = ("cluster", "kind", "namespace", "name")
"""Labels every per-object series starts with, in this order."""

STATUSES: tuple[str, ...] = ("ready", "failing", "progressing", "stalled", "suspended", "unknown")
"""The values of the ``status`` label, one per object at a time."""

PER_OBJECT_MODES: tuple[str, ...] = ("all", "not-ready", "none")
"""``--per-object``: which objects get per-object series; aggregates are always complete."""


def _po(
    name: str, help: str, extra: tuple[str, ...] = (), kinds: tuple[str, ...] = ()
) -> MetricSpec:
    return MetricSpec(name, help, "gauge", IDENTITY_LABELS + extra, True, kinds)


SOURCE_KINDS_WITH_ARTIFACT: tuple[str, ...] = (
    "GitRepository",
    "OCIRepository",
    "Bucket",
    "HelmRepository",
    "HelmChart",
    "ExternalArtifact",
)
APPLIER_KINDS: tuple[str, ...] = ("Kustomization", "HelmRelease")

# Per-object families -------------------------------------------------------------------------

RESOURCE_STATUS = _po(
    "flux_resource_status",
    "Derived status of a Flux object (always 1; the status is a label). Objects that are not "
    "ready carry the root cause: the first object up the source/dependsOn chain failing for its "
    "own reason (the object itself when nothing upstream is failing).",
    ("status", "reason", "root_kind", "root_namespace", "root_name", "root_reason"),
)
RESOURCE_STATUS_SINCE = _po(
    "flux_resource_status_since_timestamp_seconds",
    "Unix time since which the object has been in its current status.",
)
RESOURCE_INFO = _po(
    "flux_resource_info",
    "Descriptive labels of a Flux object (always 1).",
    (
        "api_version",
        "applied_revision",
        "attempted_revision",
        "source_kind",
        "source_namespace",
        "source_name",
        "shard",
        "tenant",
        "chart_name",
        "chart_version",
        "url",
        "ref",
        "path",
        "suspended",
    ),
)
RESOURCE_LAST_SUCCESS = _po(
    "flux_resource_last_success_timestamp_seconds",
    "Unix time of the last successful reconciliation the object's status records.",
)
RESOURCE_LAST_ATTEMPT = _po(
    "flux_resource_last_attempt_timestamp_seconds",
    "Unix time of the last reconciliation attempt the object's status records.",
)
RESOURCE_INTERVAL = _po(
    "flux_resource_interval_seconds",
    "The object's reconciliation interval (spec.interval).",
)
RESOURCE_GENERATION_LAG = _po(
    "flux_resource_generation_lag",
    "metadata.generation minus status.observedGeneration: spec changes not yet reconciled.",
)
RESOURCE_DRIFT = _po(
    "flux_resource_revision_drift",
    "1 when the object attempts, or its source offers, a revision that is not applied yet.",
    ("applied_revision", "wanted_revision"),
    APPLIER_KINDS,
)
RESOURCE_DRIFT_SINCE = _po(
    "flux_resource_revision_drift_since_timestamp_seconds",
    "Unix time since which the object has been drifting (present only while drifting).",
    (),
    APPLIER_KINDS,
)
INVENTORY_ENTRIES = _po(
    "flux_resource_inventory_entries",
    "Number of objects in the Kustomization or HelmRelease inventory.",
    (),
    APPLIER_KINDS,
)
HELMRELEASE_FAILURES = _po(
    "flux_helmrelease_failures",
    "status.failures: failed reconciliations since the last success or reset.",
    (),
    ("HelmRelease",),
)
HELMRELEASE_INSTALL_FAILURES = _po(
    "flux_helmrelease_install_failures",
    "status.installFailures: failed install attempts since the last success or reset.",
    (),
    ("HelmRelease",),
)
HELMRELEASE_UPGRADE_FAILURES = _po(
    "flux_helmrelease_upgrade_failures",
    "status.upgradeFailures: failed upgrade attempts since the last success or reset.",
    (),
    ("HelmRelease",),
)
HELMRELEASE_DRIFTED = _po(
    "flux_helmrelease_drifted",
    "1 when helm-controller found the cluster state drifted from the release (Drifted=True), "
    "0 when it checked and found none; absent without drift detection.",
    (),
    ("HelmRelease",),
)
HELMRELEASE_LAST_ACTION = _po(
    "flux_helmrelease_last_attempted_action_info",
    "status.lastAttemptedReleaseAction (install or upgrade) as a label (always 1).",
    ("action",),
    ("HelmRelease",),
)
SOURCE_ARTIFACT_SIZE = _po(
    "flux_source_artifact_size_bytes",
    "Size of the source's current artifact.",
    (),
    SOURCE_KINDS_WITH_ARTIFACT,
)
SOURCE_ARTIFACT_UPDATED = _po(
    "flux_source_artifact_updated_timestamp_seconds",
    "Unix time the source's current artifact was produced (artifact.lastUpdateTime).",
    (),
    SOURCE_KINDS_WITH_ARTIFACT,
)
IMAGEPOLICY_LATEST = _po(
    "flux_imagepolicy_latest_info",
    "The image reference an ImagePolicy currently selects (always 1).",
    ("image", "tag"),
    ("ImagePolicy",),
)
IMAGEREPOSITORY_TAGS = _po(
    "flux_imagerepository_tags",
    "Number of tags found by the ImageRepository's last scan.",
    (),
    ("ImageRepository",),
)
IMAGEREPOSITORY_LAST_SCAN = _po(
    "flux_imagerepository_last_scan_timestamp_seconds",
    "Unix time of the ImageRepository's last scan.",
    (),
    ("ImageRepository",),
)
CANARY_PHASE = _po(
    "flux_canary_phase",
    "Flagger Canary analysis phase (always 1; the phase is a label).",
    ("phase",),
    ("Canary",),
)
CANARY_WEIGHT = _po(
    "flux_canary_weight_percent",
    "Traffic weight routed to the canary (status.canaryWeight).",
    (),
    ("Canary",),
)
CANARY_FAILED_CHECKS = _po(
    "flux_canary_failed_checks",
    "Failed checks of the current canary analysis (status.failedChecks).",
    (),
    ("Canary",),
)
CANARY_ITERATIONS = _po(
    "flux_canary_iterations",
    "Iterations of the current canary analysis (status.iterations).",
    (),
    ("Canary",),
)
GOTK_RESOURCE_INFO = MetricSpec(
    "gotk_resource_info",
    "Compatibility copy of the flux2-monitoring-example kube-state-metrics series (always 1).",
    "gauge",
    (
        "cluster",
        "customresource_group",
        "customresource_kind",
        "customresource_version",
        "exported_namespace",
        "name",
        "ready",
        "suspended",
        "revision",
        "source_name",
        "chart_name",
        "chart_version",
        "chart_app_version",
        "chart_ref_name",
        "chart_source_name",
        "url",
        "endpoint",
        "bucket_name",
        "webhook_path",
        "image",
    ),
    per_object=True,
    kinds=(  # the kinds the flux2-monitoring-example config covers (not Flagger's Canary)
        "Kustomization",
        "HelmRelease",
        "GitRepository",
        "OCIRepository",
        "Bucket",
        "HelmRepository",
        "HelmChart",
        "ImageRepository",
        "ImagePolicy",
        "ImageUpdateAutomation",
        "Receiver",
        "Alert",
        "Provider",
    ),
)

PER_OBJECT: tuple[MetricSpec, ...] = (
    RESOURCE_STATUS,
    RESOURCE_STATUS_SINCE,
    RESOURCE_INFO,
    RESOURCE_LAST_SUCCESS,
    RESOURCE_LAST_ATTEMPT,
    RESOURCE_INTERVAL,
    RESOURCE_GENERATION_LAG,
    RESOURCE_DRIFT,
    RESOURCE_DRIFT_SINCE,
    INVENTORY_ENTRIES,
    HELMRELEASE_FAILURES,
    HELMRELEASE_INSTALL_FAILURES,
    HELMRELEASE_UPGRADE_FAILURES,
    HELMRELEASE_DRIFTED,
    HELMRELEASE_LAST_ACTION,
    SOURCE_ARTIFACT_SIZE,
    SOURCE_ARTIFACT_UPDATED,
    IMAGEPOLICY_LATEST,
    IMAGEREPOSITORY_TAGS,
    IMAGEREPOSITORY_LAST_SCAN,
    CANARY_PHASE,
    CANARY_WEIGHT,
    CANARY_FAILED_CHECKS,
    CANARY_ITERATIONS,
)
"""The one table of per-object families, in exposition order: ``exporter.families`` builds its
families from this tuple (each spec paired with its sampling function), so the order lives only
here. ``gotk_resource_info`` is separate: it is only served on request."""

# Aggregates (always complete, whatever --per-object says) -------------------------------------

CLUSTER_RESOURCES = MetricSpec(
    "flux_cluster_resources",
    "Number of Flux objects by cluster, kind and status.",
    "gauge",
    ("cluster", "kind", "status"),
)
CLUSTER_REACHABLE = MetricSpec(
    "flux_cluster_reachable",
    "1 when the exporter can reach the cluster's API server, else 0.",
    "gauge",
    ("cluster",),
)
CLUSTER_SYNCED = MetricSpec(
    "flux_cluster_synced",
    "1 once every served Flux kind of the cluster finished its initial list.",
    "gauge",
    ("cluster",),
)
CLUSTER_LAST_FULL_SYNC = MetricSpec(
    "flux_cluster_last_full_sync_timestamp_seconds",
    "Unix time the last complete list of every served kind of the cluster ended.",
    "gauge",
    ("cluster",),
)
CLUSTER_AUTH_FAILED = MetricSpec(
    "flux_cluster_auth_failed",
    "1 while the cluster's API server rejects the exporter's credentials (HTTP 401 or 403), "
    "else 0.",
    "gauge",
    ("cluster",),
)
CLUSTER_KIND_SERVED = MetricSpec(
    "flux_cluster_kind_served_info",
    "The API version the exporter watches for each kind a cluster serves (always 1).",
    "gauge",
    ("cluster", "kind", "api_version"),
)
TRANSITIONS = MetricSpec(
    "flux_resource_transitions_total",
    "Status changes observed by the exporter, by previous and new status.",
    "counter",
    ("cluster", "kind", "tenant", "from", "to"),
)
REVISIONS_APPLIED = MetricSpec(
    "flux_resource_revisions_applied_total",
    "New revisions applied by Kustomizations and HelmReleases, as observed by the exporter.",
    "counter",
    ("cluster", "kind", "tenant"),
)
APPLY_LATENCY = MetricSpec(
    "flux_revision_apply_latency_seconds",
    "Commit-to-applied latency: from a source revision first appearing (its artifact's "
    "lastUpdateTime, or when the exporter first saw it) to a dependent applying it.",
    "histogram",
    ("cluster", "kind", "tenant"),
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600, 86400),
)
TIME_TO_RECOVER = MetricSpec(
    "flux_resource_time_to_recover_seconds",
    "Time from an object becoming failing or stalled to it being ready again.",
    "histogram",
    ("cluster", "kind", "tenant"),
    buckets=(30, 60, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200, 604800),
)

AGGREGATES: tuple[MetricSpec, ...] = (
    CLUSTER_RESOURCES,
    CLUSTER_REACHABLE,
    CLUSTER_AUTH_FAILED,
    CLUSTER_SYNCED,
    CLUSTER_LAST_FULL_SYNC,
    CLUSTER_KIND_SERVED,
    TRANSITIONS,
    REVISIONS_APPLIED,
    APPLY_LATENCY,
    TIME_TO_RECOVER,
)

# The exporter's own health (prometheus-client registries appended to /metrics) ----------------

SELF_SCRAPE_DURATION = MetricSpec(
    "fluxwatch_exporter_scrape_duration_seconds",
    "Time spent building the /metrics body (before compression).",
    "histogram",
    (),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SELF_MALFORMED = MetricSpec(
    "fluxwatch_exporter_malformed_objects_total",
    "Surprising fields found in watched objects (the object is still exported as far as "
    "possible), by cluster, kind and reason.",
    "counter",
    ("cluster", "kind", "reason"),
)
SELF_TRANSITIONS_PUBLISHED = MetricSpec(
    "fluxwatch_exporter_transitions_published_total",
    "Transitions handed to the transition sink.",
    "counter",
    (),
)
SELF_TRANSITIONS_DROPPED = MetricSpec(
    "fluxwatch_exporter_transitions_dropped_total",
    "Transitions dropped because the queue to the transition sink was full or the sink failed.",
    "counter",
    ("reason",),
)
SELF_OBJECTS = MetricSpec(
    "fluxwatch_exporter_objects",
    "Flux objects held by the store.",
    "gauge",
    (),
)

SELF_BRIDGE_BUFFERED = MetricSpec(
    "fluxwatch_exporter_bridge_buffered",
    "Transitions held in memory for the remote bridge (--bridge-url), not yet acknowledged.",
    "gauge",
    (),
)
SELF_BRIDGE_SENT = MetricSpec(
    "fluxwatch_exporter_bridge_sent_total",
    "Items the remote bridge acknowledged as stored, by what they were (transition, "
    "rollout_report).",
    "counter",
    ("item",),
)
SELF_BRIDGE_DROPPED = MetricSpec(
    "fluxwatch_exporter_bridge_dropped_total",
    "Transitions given up on: buffer_full (the oldest is dropped when the buffer is full), "
    "rejected (the bridge refused the transition as malformed).",
    "counter",
    ("reason",),
)
SELF_BRIDGE_POST_ERRORS = MetricSpec(
    "fluxwatch_exporter_bridge_post_errors_total",
    "Failed POSTs to the remote bridge (retried): unauthorized, rejected, server_error, "
    "connection.",
    "counter",
    ("reason",),
)

SELF: tuple[MetricSpec, ...] = (
    SELF_SCRAPE_DURATION,
    SELF_MALFORMED,
    SELF_TRANSITIONS_PUBLISHED,
    SELF_TRANSITIONS_DROPPED,
    SELF_OBJECTS,
    SELF_BRIDGE_BUFFERED,
    SELF_BRIDGE_SENT,
    SELF_BRIDGE_DROPPED,
    SELF_BRIDGE_POST_ERRORS,
)

# The watch layer's health (exporter.kube.health, its own registry, per cluster) ---------------

WATCH_RESTARTS = MetricSpec(
    "fluxwatch_exporter_watch_restarts_total",
    "Watch streams reopened, by reason: timeout (server ended it, routine), gone (410, "
    "relisted), inactivity (silent stream), error (connection or API error).",
    "counter",
    ("cluster", "reason"),
)
RELISTS = MetricSpec(
    "fluxwatch_exporter_relists_total",
    "Full lists of a kind after the first one (410 Gone, reconnect after history loss).",
    "counter",
    ("cluster",),
)
API_ERRORS = MetricSpec(
    "fluxwatch_exporter_api_errors_total",
    "Failed API requests by HTTP status code; 'connection' when no answer came.",
    "counter",
    ("cluster", "code"),
)
DECODE_ERRORS = MetricSpec(
    "fluxwatch_exporter_decode_errors_total",
    "Watch lines or list items that were not valid JSON objects, or that the store could not "
    "take; each is skipped.",
    "counter",
    ("cluster",),
)
WATCH_EVENTS = MetricSpec(
    "fluxwatch_exporter_watch_events_total",
    "Watch events processed (ADDED, MODIFIED, DELETED; bookmarks excluded).",
    "counter",
    ("cluster",),
)

KUBECONFIG_FILES_UNUSABLE = MetricSpec(
    "fluxwatch_exporter_kubeconfig_files_unusable",
    "Files of the kubeconfig directory that could not be used at the last scan (empty, not "
    "YAML, not a kubeconfig, no current context, a duplicate cluster); each is logged once "
    "with its path, and the other files are watched.",
    "gauge",
    (),
)

WATCH_HEALTH: tuple[MetricSpec, ...] = (
    WATCH_RESTARTS,
    RELISTS,
    API_ERRORS,
    DECODE_ERRORS,
    WATCH_EVENTS,
    KUBECONFIG_FILES_UNUSABLE,
)

# Fleet rollouts as this exporter (shard) sees them; summable across shards ------------------

ROLLOUT_STATES: tuple[str, ...] = ("applied", "pending", "failing")
ROLLOUT_CLUSTERS = MetricSpec(
    "flux_rollout_clusters",
    "Clusters of this exporter running an applier object (Kustomization, HelmRelease), by the "
    "revision it is rolling out to and its state there: applied, pending (still on an older "
    "revision), failing. sum without(instance) over shards gives the fleet.",
    "gauge",
    ("kind", "namespace", "name", "revision", "state"),
)
ROLLOUT: tuple[MetricSpec, ...] = (ROLLOUT_CLUSTERS,)

ALL: tuple[MetricSpec, ...] = (
    *PER_OBJECT,
    GOTK_RESOURCE_INFO,
    *AGGREGATES,
    *SELF,
    *WATCH_HEALTH,
    *ROLLOUT,
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in ALL}
