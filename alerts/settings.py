"""What an operator tunes in the generated rules: thresholds, selectors, labels, runbook links.

Defaults suit a production fleet; every value can be overridden by name (``key=value``, the form
``fluxwatch alerts build --set`` takes), so a test or a demo can shrink minutes to seconds
without a second code path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from catalogue.exporter import APPLIER_KINDS, SOURCE_KINDS_WITH_ARTIFACT

DEFAULT_RUNBOOK_BASE_URL = "https://github.com/fluxwatch/fluxwatch/blob/main/docs/runbooks"

FETCHING_SOURCE_KINDS: tuple[str, ...] = (*SOURCE_KINDS_WITH_ARTIFACT, "ImageRepository")
"""Kinds whose failure means "cannot fetch": they keep serving their last artifact meanwhile."""

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r'^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*$')


class SettingsError(ValueError):
    """An override that cannot be applied; the message names the key."""


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``1h30m``, ``2d`` -> seconds (Prometheus' own units, whole seconds)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 2h or 1d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: int) -> str:
    """Seconds -> the shortest Prometheus duration (``900`` -> ``15m``, ``5400`` -> ``1h30m``)."""
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def _check_matchers(text: str) -> str:
    """A comma-separated list of PromQL label matchers, e.g. ``job="fluxwatch"``; may be empty."""
    parts = [p for p in _split_matchers(text) if p.strip()]
    for part in parts:
        if not _MATCHER.match(part):
            raise ValueError(f'{part.strip()!r} is not a label matcher such as job="fluxwatch"')
    return ",".join(p.strip() for p in parts)


def _split_matchers(text: str) -> list[str]:
    """Split on commas outside quoted values."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Everything that shapes the generated rules. Durations are whole seconds."""

    exporter_selector: str = 'job="fluxwatch"'
    """Matchers added to every exporter metric (and to ``up`` for the exporter-down alert)."""
    bridge_selector: str = 'job="fluxwatch-bridge"'
    """Matchers added to every bridge metric (and to ``up`` for the bridge-down alert)."""
    cluster_label: str = "cluster"
    """The label naming the cluster (the exporter writes ``cluster``; relabelled setups differ)."""
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL
    """``runbook_url`` is ``<base>/<AlertName>.md``."""

    failing_for: int = 900
    """An applier or other object not ready because of a failure for this long (any kind below
    without its own value)."""
    failing_for_kind: Mapping[str, int] = field(
        default_factory=lambda: {"HelmRelease": 900, "Kustomization": 900, "Canary": 600}
    )
    """Per-kind values of ``failing_for`` (``--set failing_for.HelmRelease=10m``)."""
    source_failing_for: int = 1800
    """A source failing to fetch: longer, because it keeps serving its last artifact."""
    stalled_for: int = 300
    retries_exhausted_for: int = 60
    stale_intervals: int = 3
    """Stale: no reconcile recorded for this many reconcile intervals."""
    stale_for: int = 600
    suspended_longer_than: int = 86400 * 7
    drift_longer_than: int = 1800
    settle_for: int = 300
    """``for:`` of the rules whose age test is in the expression (suspended, drift): a short
    confirmation so one odd scrape does not page."""
    cluster_unreachable_for: int = 300
    rollout_stalled_after: int = 3600
    """A revision applied on some clusters and wanted but not applied on others for this long."""
    fleet_failing_min_clusters: int = 3
    """One object failing on at least this many clusters pages once, fleet-wide."""
    fleet_failing_for: int = 300
    """Shorter than the per-object values: the fleet alert is up before them and inhibits them."""
    exporter_down_for: int = 300
    watches_failing_for: int = 600
    bridge_down_for: int = 300
    bridge_queue_age: int = 900
    """Oldest undelivered notification older than this: a destination is not taking them."""
    bridge_queue_for: int = 300
    bridge_dead_letters_for: int = 60
    evaluation_interval: int = 60
    """The rule groups' ``interval``."""

    def kind_failing_for(self, kind: str) -> int:
        return self.failing_for_kind.get(kind, self.failing_for)

    def runbook(self, alert: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{alert}.md"


_KEYS = {f.name: f for f in fields(AlertSettings)}
_DURATION_KEYS = frozenset(
    name
    for name, f in _KEYS.items()
    if f.type == "int" and name not in ("stale_intervals", "fleet_failing_min_clusters")
)
_COUNT_KEYS = frozenset({"stale_intervals", "fleet_failing_min_clusters"})
FAILING_FOR_KINDS: tuple[str, ...] = (
    *APPLIER_KINDS,
    "Canary",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "Receiver",
)
"""Kinds with their own ``failing_for.<kind>``; sources use ``source_failing_for``."""


def setting_keys() -> list[str]:
    """Every key ``with_overrides`` accepts, for help texts and docs."""
    return sorted([*_KEYS, *(f"failing_for.{k}" for k in FAILING_FOR_KINDS)])


def with_overrides(settings: AlertSettings, overrides: Iterable[str]) -> AlertSettings:
    """Apply ``key=value`` overrides; a bad key or value raises SettingsError naming it."""
    changes: dict[str, Any] = {}
    per_kind = dict(settings.failing_for_kind)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise SettingsError(f"{item!r}: expected key=value")
        try:
            if key.startswith("failing_for."):
                kind = key.partition(".")[2]
                if kind not in FAILING_FOR_KINDS:
                    known = ", ".join(FAILING_FOR_KINDS)
                    raise ValueError(f"not a kind with its own threshold; one of {known}")
                per_kind[kind] = parse_duration(value)
            elif key in _DURATION_KEYS:
                changes[key] = parse_duration(value)
            elif key in _COUNT_KEYS:
                count = int(value)
                if count < 1:
                    raise ValueError("must be at least 1")
                changes[key] = count
            elif key in ("exporter_selector", "bridge_selector"):
                changes[key] = _check_matchers(value)
            elif key == "cluster_label":
                if not _LABEL_NAME.match(value):
                    raise ValueError(f"{value!r} is not a Prometheus label name")
                changes[key] = value
            elif key == "runbook_base_url":
                if not value.strip():
                    raise ValueError("must not be empty")
                changes[key] = value.strip()
            else:
                raise ValueError(f"unknown setting; known: {', '.join(setting_keys())}")
        except ValueError as exc:
            raise SettingsError(f"{key}: {exc}") from None
    if changes.get("evaluation_interval", settings.evaluation_interval) < 1:
        raise SettingsError("evaluation_interval: must be at least 1s")
    return replace(settings, failing_for_kind=per_kind, **changes)
