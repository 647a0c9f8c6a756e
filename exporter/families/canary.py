"""Flagger Canary: analysis phase, traffic weight, failed checks and iterations."""

from __future__ import annotations

from collections.abc import Sequence

from catalogue import exporter as c
from exporter.families._common import Family, ObjectState, Sample, one


def _phase(s: ObjectState) -> Sequence[Sample]:
    return (((s.derived.phase or "Unknown",), 1.0),)


FAMILIES: tuple[Family, ...] = (
    Family(c.CANARY_PHASE, _phase),
    Family(c.CANARY_WEIGHT, lambda s: one(s.derived.weight)),
    Family(c.CANARY_FAILED_CHECKS, lambda s: one(s.derived.failed_checks)),
    Family(c.CANARY_ITERATIONS, lambda s: one(s.derived.iterations)),
)
