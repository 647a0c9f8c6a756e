"""Names of the recording rules the dashboards read instead of re-aggregating per-object series.

The rules themselves are written by ``alerts/recording.py`` (``fluxwatch alerts build``) and
listed in docs/alerts.md; dashboards may not import ``alerts``, so the names are built here from
the same convention, ``level:metric:operations`` (``level`` the labels kept, ``fleet`` for none;
``metric`` the catalogue name, counters without ``_total``), and a test checks that every name a
dashboard uses is one the alert rules record.
"""

from __future__ import annotations

from catalogue.specs import MetricSpec
from dashboards.promql import PromQL


def record(
    q: PromQL, level: tuple[str, ...], spec: MetricSpec, operation: str, suffix: str = ""
) -> str:
    """The recorded series' name: ``cluster`` in ``level`` follows the configured label."""
    prefix = "_".join(q.label(label) for label in level) or "fleet"
    return f"{prefix}:{spec.family}{suffix}:{operation}"


def rule(q: PromQL, name: str, **matchers: str) -> str:
    """``name{...}`` with exact-regex matchers (variables: ``cluster='$cluster'``)."""
    parts = [f'{q.label(label)}=~"{value}"' for label, value in sorted(matchers.items())]
    return f"{name}{{{','.join(parts)}}}"
