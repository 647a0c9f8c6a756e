"""The shape of one metric family, shared by every part of the catalogue.

Pure data with no third-party imports (see the ``catalogue`` package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["gauge", "counter", "histogram"]
Stability = Literal["alpha", "beta", "stable"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str  # as exposed in the text format (counters end in _total)
    help: str
    type: MetricType
    labels: tuple[str, ...]  # every label the series may carry, identity labels first
    per_object: bool = False  # one or more series per Flux object (subject to --per-object)
    kinds: tuple[str, ...] = ()  # per-object families limited to these kinds; () = every kind
    stability: Stability = "alpha"
    buckets: tuple[float, ...] = ()  # histograms only (upper bounds, +Inf implied)

    @property
    def family(self) -> str:
        """The OpenMetrics family name: counters lose their ``_total`` suffix."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name
