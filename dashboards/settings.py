"""What a platform team adjusts without forking the dashboards: datasource, labels, thresholds.

A Thanos or Mimir datasource that adds the cluster as an external label, a Prometheus that
relabels the exporter's ``cluster`` label to something else, or one shared by several exporters
(``selector='job="fluxwatch"'``) all work by changing these fields, never the panels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^[0-9]+[smhdw]$")


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    datasource: str = "prometheus"
    """Default of the ``datasource`` variable: a Prometheus-compatible datasource's name or UID."""
    cluster_label: str = "cluster"
    """The label that names the cluster in the series the dashboards query."""
    selector: str = ""
    """Extra label matchers for every fluxwatch series, e.g. ``job="fluxwatch"``."""
    controller_selector: str = 'namespace="flux-system"'
    """Label matchers for the Flux controllers' own series (their pods' namespace)."""
    uid_prefix: str = "fluxwatch"
    """Dashboard UIDs are ``<uid_prefix>-<name>``; push overwrites only these."""
    stale_factor: float = 2.0
    """An object is stale when its last run is older than this many intervals."""
    failing_for_seconds: int = 900
    """Failing longer than this turns a cell red."""
    drift_for_seconds: int = 1800
    """A revision offered but not applied for longer than this counts as lagging."""
    artifact_max_age_seconds: int = 86400
    """A source artifact older than this is shown as old."""
    top: int = 50
    """Rows in the "top failing" and similar tables."""
    latency_window: str = "1h"
    """Window of the commit-to-applied and time-to-restore quantiles."""
    delivery_window: str = "7d"
    """Window of the delivery (DORA-style) figures."""
    recording_rules: bool = True
    """Read fleet-wide aggregates from the recording rules of ``fluxwatch alerts build``
    (docs/alerts.md), so a 500-cluster fleet's panels do not re-aggregate tens of thousands of
    series on every refresh. Off: every panel queries the exporter's series directly."""

    def __post_init__(self) -> None:
        if not _LABEL.match(self.cluster_label):
            raise ValueError(f"cluster_label: {self.cluster_label!r} is not a label name")
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,24}$", self.uid_prefix):
            raise ValueError(f"uid_prefix: {self.uid_prefix!r}: lower-case letters, digits, '-'")
        for key in ("latency_window", "delivery_window"):
            if not _DURATION.match(getattr(self, key)):
                raise ValueError(f"{key}: {getattr(self, key)!r} is not a duration like 1h")
        if self.stale_factor <= 0:
            raise ValueError("stale_factor must be positive")
        for key in ("selector", "controller_selector"):
            value = getattr(self, key)
            if "{" in value or "}" in value:
                raise ValueError(f"{key}: give matchers only, without braces: {value!r}")

    def uid(self, name: str) -> str:
        return f"{self.uid_prefix}-{name}"
