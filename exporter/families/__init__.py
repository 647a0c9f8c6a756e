"""The per-object metric families, one module per kind (or group of kinds).

Each module maps catalogue specs to the function that samples them (``SAMPLERS``); ``FAMILIES``
is built by walking ``catalogue.exporter.PER_OBJECT``, the one table of per-object families, so
the exposition order, the headers, the docs and the rendered lines cannot disagree. A spec without
a sampler, or a sampler for a spec outside that table, fails at import.
"""

from __future__ import annotations

from collections.abc import Mapping

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.families import canary, compat, core, helmrelease, image, sources
from exporter.families._common import (
    Family,
    ObjectState,
    Sampler,
    escape_label,
    format_value,
    render_object,
)


def build_families(
    table: tuple[MetricSpec, ...], samplers: Mapping[MetricSpec, Sampler]
) -> tuple[Family, ...]:
    """One ``Family`` per spec of ``table``, in its order; every spec needs exactly one sampler."""
    missing = [spec.name for spec in table if spec not in samplers]
    extra = [spec.name for spec in samplers if spec not in table]
    if missing or extra:
        raise RuntimeError(
            f"metric families out of step with the catalogue: no sampler for {missing}, "
            f"sampler for a family outside the table: {extra}"
        )
    return tuple(Family(spec, samplers[spec]) for spec in table)


def _merge(*parts: Mapping[MetricSpec, Sampler]) -> dict[MetricSpec, Sampler]:
    merged: dict[MetricSpec, Sampler] = {}
    for part in parts:
        twice = merged.keys() & part.keys()
        if twice:
            raise RuntimeError(f"two samplers for {sorted(s.name for s in twice)}")
        merged.update(part)
    return merged


SAMPLERS: dict[MetricSpec, Sampler] = _merge(
    core.SAMPLERS, helmrelease.SAMPLERS, sources.SAMPLERS, image.SAMPLERS, canary.SAMPLERS
)
FAMILIES: tuple[Family, ...] = build_families(c.PER_OBJECT, SAMPLERS)
COMPAT_FAMILIES: tuple[Family, ...] = compat.FAMILIES


def families_for(compat_info: bool) -> tuple[Family, ...]:
    """The families the store renders; ``gotk_resource_info`` only when asked for."""
    return FAMILIES + COMPAT_FAMILIES if compat_info else FAMILIES


__all__ = [
    "COMPAT_FAMILIES",
    "FAMILIES",
    "SAMPLERS",
    "Family",
    "ObjectState",
    "Sampler",
    "build_families",
    "escape_label",
    "families_for",
    "format_value",
    "render_object",
]
