"""Flagger Canary: analysis phase, traffic weight, failed checks and iterations."""

from __future__ import annotations

from collections.abc import Sequence

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.families._common import ObjectState, Sample, Sampler, one


def _phase(s: ObjectState) -> Sequence[Sample]:
    return (((s.derived.phase or "Unknown",), 1.0),)


SAMPLERS: dict[MetricSpec, Sampler] = {
    c.CANARY_PHASE: _phase,
    c.CANARY_WEIGHT: lambda s: one(s.derived.weight),
    c.CANARY_FAILED_CHECKS: lambda s: one(s.derived.failed_checks),
    c.CANARY_ITERATIONS: lambda s: one(s.derived.iterations),
}
