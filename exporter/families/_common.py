"""Shared pieces of the per-kind metric families: the object state they read and rendering.

A ``Family`` pairs a catalogue ``MetricSpec`` with a pure ``samples(state)`` function that returns
the values of the spec's non-identity labels and the sample value. ``render_object`` turns all
families of one object into exposition lines once, on that object's watch event; a scrape only
joins those bytes (the kube-state-metrics metrics-store design).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from catalogue.exporter import IDENTITY_LABELS, MetricSpec
from exporter.status import Derived
from exporter.transitions import RootCause

RETRYING = frozenset({"progressing", "unknown"})
"""Statuses a failing object passes through while Flux retries it (Ready=Unknown during a run)."""

MAX_LABEL_VALUE = 256
"""Longer label values are cut (and counted): a label is an index key, not a message."""

Sample = tuple[tuple[str, ...], float]
"""Values of the spec's labels after the identity labels (in order), and the sample value."""


@dataclass(slots=True)
class ObjectState:
    """One object as the store holds it: derived fields plus what needs its neighbours."""

    cluster: str
    derived: Derived
    since: float | None = None  # when it entered its current status
    root: RootCause | None = None  # only for objects that are not ready
    wanted_revision: str = ""  # non-empty while drifting: the revision not yet applied
    drift_since: float | None = None
    failing_since: float | None = None  # entered failing/stalled and not ready since
    failure_reason: str = ""  # the reason it last failed with, while not ready since
    # The failing or stalled status it last had, and since when, kept through the retries in
    # between: a retry is not a recovery, so coming back to the same status keeps its "since".
    bad_status: str = ""
    bad_since: float | None = None

    def for_root_cause(self) -> Derived:
        """The object as root-cause walks see it: one retrying after a failure (Flux shows
        Ready=Unknown while the retry runs) still counts as failing with its last reason, so
        the root labels of its dependents do not flap with every retry."""
        d = self.derived
        if self.failing_since is not None and self.failure_reason and d.status in RETRYING:
            return replace(d, status="failing", reason=self.failure_reason)
        return d


Sampler = Callable[[ObjectState], Sequence[Sample]]
"""What a family reads from one object: its samples, none when the value is unknown."""


@dataclass(frozen=True, slots=True)
class Family:
    spec: MetricSpec
    samples: Sampler
    cluster_only_identity: bool = False  # gotk_resource_info brings its own identity labels

    def applies_to(self, kind: str) -> bool:
        return not self.spec.kinds or kind in self.spec.kinds


def escape_label(value: str, notes: list[str] | None = None) -> str:
    """Escape per the text format (backslash, quote, newline) after bounding the length."""
    if len(value) > MAX_LABEL_VALUE:
        if notes is not None and "oversized_label" not in notes:
            notes.append("oversized_label")
        value = value[: MAX_LABEL_VALUE - 3] + "..."
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def one(value: float | None) -> Sequence[Sample]:
    """A family with no extra labels: one sample when the value is known, none otherwise."""
    return () if value is None else (((), float(value)),)


def render_object(
    state: ObjectState, families: Sequence[Family], notes: list[str]
) -> tuple[bytes, ...]:
    """The exposition lines of one object, one bytes per family (empty when it has none)."""
    d = state.derived
    cluster = escape_label(state.cluster, notes)
    identity = (
        f'cluster="{cluster}",kind="{escape_label(d.kind, notes)}",'
        f'namespace="{escape_label(d.namespace, notes)}",name="{escape_label(d.name, notes)}"'
    )
    out: list[bytes] = []
    for family in families:
        if not family.applies_to(d.kind):
            out.append(b"")
            continue
        samples = family.samples(state)
        if not samples:
            out.append(b"")
            continue
        spec = family.spec
        if family.cluster_only_identity:
            prefix = f'{spec.name}{{cluster="{cluster}"'
            names = spec.labels[1:]
        else:
            prefix = f"{spec.name}{{{identity}"
            names = spec.labels[len(IDENTITY_LABELS) :]
        lines = []
        for values, value in samples:
            # strict: a sampler returning more or fewer values than its spec has labels is a
            # bug that must fail loudly (counted as store_error), not shift values onto the
            # wrong labels.
            extra = "".join(
                f',{label}="{escape_label(v, notes)}"'
                for label, v in zip(names, values, strict=True)
                if v
            )
            lines.append(f"{prefix}{extra}}} {format_value(value)}\n")
        # "replace": a lone surrogate from a JSON \ud800 escape must not fail the whole object
        out.append("".join(lines).encode("utf-8", "replace"))
    return tuple(out)
