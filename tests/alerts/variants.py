"""The settings variants every rule test runs over: defaults, and an operator's tuned setup."""

from __future__ import annotations

from alerts.settings import AlertSettings, with_overrides

TUNED_OVERRIDES = (
    'exporter_selector=job="flux-exporter",env=~"prod|staging"',
    'bridge_selector=job="bridge"',
    "cluster_label=k8s_cluster",
    "runbook_base_url=https://wiki.example.com/flux/runbooks/",
    "failing_for=20m",
    "failing_for.HelmRelease=10m",
    "failing_for.Kustomization=5m",
    "source_failing_for=1h",
    "fleet_failing_min_clusters=10",
    "stale_intervals=5",
    "evaluation_interval=30s",
)

VARIANTS: dict[str, AlertSettings] = {
    "default": AlertSettings(),
    "tuned": with_overrides(AlertSettings(), TUNED_OVERRIDES),
}
