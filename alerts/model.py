"""The shapes of generated rules, and the PromQL building blocks every rule module shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts.settings import AlertSettings, format_duration
from catalogue.specs import MetricSpec


@dataclass(frozen=True, slots=True)
class AlertingRule:
    alert: str
    expr: str
    for_seconds: int
    severity: str
    scope: str  # object | cluster | fleet | exporter | bridge: what the inhibition rules key on
    summary: str
    description: str
    metrics: tuple[str, ...]  # every metric name the expression reads (checked against a scrape)
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self, settings: AlertSettings) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": format_duration(self.for_seconds),
            "labels": {"scope": self.scope, "severity": self.severity, **self.extra_labels},
            "annotations": {
                "description": self.description,
                "runbook_url": settings.runbook(self.alert),
                "summary": self.summary,
            },
        }


@dataclass(frozen=True, slots=True)
class RecordingRule:
    record: str  # level:metric:operations
    expr: str
    meaning: str  # one line for docs/alerts.md
    metrics: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True, slots=True)
class RuleGroup:
    name: str
    rules: tuple[AlertingRule | RecordingRule, ...]
    interval: int | None = None

    def as_dict(self, settings: AlertSettings) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        out["interval"] = format_duration(self.interval or settings.evaluation_interval)
        out["rules"] = [
            r.as_dict(settings) if isinstance(r, AlertingRule) else r.as_dict() for r in self.rules
        ]
        return out


@dataclass(frozen=True, slots=True)
class Query:
    """PromQL helpers bound to the operator's selectors and cluster label."""

    settings: AlertSettings
    used: list[str] = field(default_factory=list)

    @property
    def cl(self) -> str:
        return self.settings.cluster_label

    def exporter(self, spec: MetricSpec | str, suffix: str = "", **matchers: str) -> str:
        return self._select(spec, suffix, self.settings.exporter_selector, matchers)

    def bridge(self, spec: MetricSpec | str, suffix: str = "", **matchers: str) -> str:
        return self._select(spec, suffix, self.settings.bridge_selector, matchers)

    def select(self, spec: MetricSpec, base: str, **matchers: str) -> str:
        """A metric with an explicit base selector (``up`` of one job)."""
        return self._select(spec, "", base, matchers)

    def _select(
        self, spec: MetricSpec | str, suffix: str, base: str, matchers: Mapping[str, str]
    ) -> str:
        name = (spec if isinstance(spec, str) else spec.name) + suffix
        self.used.append(name)
        parts = [base] if base else []
        for key, value in matchers.items():
            op, _, val = value.partition(" ")
            parts.append(f'{key}{op}"{val}"')
        return f"{name}{{{','.join(parts)}}}" if parts else name

    def identity(self) -> str:
        """The per-object identity labels, with the configured cluster label."""
        return f"{self.cl}, kind, namespace, name"

    def take(self) -> tuple[str, ...]:
        """The metric names used since the last call (sorted, unique)."""
        names = tuple(sorted(set(self.used)))
        self.used.clear()
        return names


def eq(value: str) -> str:
    return f"= {value}"


def re_(value: str) -> str:
    return f"=~ {value}"


def nre(value: str) -> str:
    return f"!~ {value}"


def ne(value: str) -> str:
    return f"!= {value}"
