"""PromQL built from the metric catalogue, so every name and label a panel uses is checked.

``PromQL.sel`` renders one selector: the metric name from its ``MetricSpec``, the dashboard
variables that apply to the labels the family carries, the configured extra matchers, and the
panel's own matchers, each checked against the family's labels. A renamed metric or label
therefore fails the build, not a panel in front of an on-call engineer.
"""

from __future__ import annotations

from collections.abc import Iterable

from catalogue.exporter import IDENTITY_LABELS
from catalogue.specs import MetricSpec
from dashboards.settings import DashboardSettings

VARIABLE_LABELS: tuple[str, ...] = ("cluster", "namespace", "kind", "tenant")
"""Dashboard variables named after the label they filter."""

NOT_READY = '!="ready"'
BAD = '=~"failing|stalled"'


def eq(value: str) -> str:
    return f'="{value}"'


def regex(value: str) -> str:
    return f'=~"{value}"'


def _matcher(op_value: str) -> str:
    for op in ("=~", "!~", "!=", "="):
        if op_value.startswith(op):
            return op_value
    return eq(op_value)


class PromQL:
    """Selector and grouping helpers bound to one ``DashboardSettings``."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings

    def label(self, name: str) -> str:
        """The label as the datasource has it (``cluster`` may be renamed)."""
        return self.settings.cluster_label if name == "cluster" else name

    def labels(self, *names: str) -> str:
        return ", ".join(self.label(n) for n in names)

    def by(self, *names: str) -> str:
        return f"by ({self.labels(*names)})"

    def on(self, *names: str) -> str:
        return f"on ({self.labels(*names)})"

    @property
    def identity(self) -> str:
        """``on (cluster, kind, namespace, name)``: joins two per-object families."""
        return f"on ({self.labels(*IDENTITY_LABELS)})"

    def sel(
        self,
        spec: MetricSpec,
        suffix: str = "",
        /,
        variables: Iterable[str] | None = None,
        selector: str | None = None,
        **matchers: str,
    ) -> str:
        """``name{...}`` with the dashboard variables the family's labels allow.

        ``variables`` limits which of ``VARIABLE_LABELS`` filter the series (default: every one
        the family carries); ``matchers`` maps a catalogue label to ``value`` or ``op"value"``.
        """
        if suffix and (spec.type != "histogram" or suffix not in ("_bucket", "_sum", "_count")):
            raise ValueError(f"{spec.name}: no series {spec.name}{suffix}")
        allowed = set(spec.labels) | ({"le"} if suffix == "_bucket" else set())
        wanted = VARIABLE_LABELS if variables is None else tuple(variables)
        parts: list[str] = []
        for var in wanted:
            if var not in VARIABLE_LABELS:
                raise ValueError(f"{var}: not a dashboard variable")
            if var in spec.labels:
                parts.append(f'{self.label(var)}=~"${var}"')
            elif variables is not None:
                raise ValueError(f"{spec.name} has no label {var!r} to filter by ${var}")
        for name, op_value in sorted(matchers.items()):
            if name not in allowed:
                raise ValueError(f"{spec.name} has no label {name!r}")
            parts.append(f"{self.label(name)}{_matcher(op_value)}")
        extra = self.settings.selector if selector is None else selector
        if extra:
            parts.append(extra)
        return f"{spec.name}{suffix}{{{','.join(parts)}}}"
