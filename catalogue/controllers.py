"""The Flux controllers' own metrics, as Prometheus stores them after scraping their pods.

fluxwatch does not serve these: source-, kustomize-, helm-, notification-, image-reflector- and
image-automation-controller do (port ``http-prom``, see shared Flux docs). They are listed here so
the "Flux controllers" dashboard and the alert rules name them from one place. Labels are those
of a PodMonitor scrape: the pod's ``namespace`` and ``pod`` (sharded controllers run as
``<controller>-shard<N>-...`` pods), the object's namespace as ``exported_namespace``, and
``cluster`` as the label (or external label) naming the cluster the controller runs in.
"""

from __future__ import annotations

from catalogue.specs import MetricSpec

TARGET_LABELS: tuple[str, ...] = ("cluster", "namespace", "pod")

RECONCILE_DURATION = MetricSpec(
    "gotk_reconcile_duration_seconds",
    "Duration of every reconciliation run, per Flux object (fluxcd/pkg runtime/metrics).",
    "histogram",
    (*TARGET_LABELS, "kind", "name", "exported_namespace"),
    buckets=(0.01, 0.0324, 0.1048, 0.3393, 1.0985, 3.5566, 11.5149, 37.2813, 120.7, 390.8, 1800),
)
RECONCILE_TOTAL = MetricSpec(
    "controller_runtime_reconcile_total",
    "Reconciliations per controller (lower-case kind) and result "
    "(success, error, requeue, requeue_after).",
    "counter",
    (*TARGET_LABELS, "controller", "result"),
)
RECONCILE_ERRORS = MetricSpec(
    "controller_runtime_reconcile_errors_total",
    "Reconciliations that returned an error, per controller.",
    "counter",
    (*TARGET_LABELS, "controller"),
)
RECONCILE_TIME = MetricSpec(
    "controller_runtime_reconcile_time_seconds",
    "Time per reconciliation, per controller.",
    "histogram",
    (*TARGET_LABELS, "controller"),
)
ACTIVE_WORKERS = MetricSpec(
    "controller_runtime_active_workers",
    "Workers currently reconciling, per controller.",
    "gauge",
    (*TARGET_LABELS, "controller"),
)
WORKQUEUE_DEPTH = MetricSpec(
    "workqueue_depth",
    "Objects waiting in the controller's work queue.",
    "gauge",
    (*TARGET_LABELS, "name"),
)
WORKQUEUE_QUEUE_DURATION = MetricSpec(
    "workqueue_queue_duration_seconds",
    "How long an object waits in the work queue before it is reconciled.",
    "histogram",
    (*TARGET_LABELS, "name"),
)

ALL: tuple[MetricSpec, ...] = (
    RECONCILE_DURATION,
    RECONCILE_TOTAL,
    RECONCILE_ERRORS,
    RECONCILE_TIME,
    ACTIVE_WORKERS,
    WORKQUEUE_DEPTH,
    WORKQUEUE_QUEUE_DURATION,
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in ALL}

CONTROLLERS: tuple[str, ...] = (
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
)
"""Deployment names; shards run as ``<name>-shard<N>`` deployments."""
