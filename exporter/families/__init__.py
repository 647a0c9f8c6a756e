"""The per-object metric families, one module per kind (or group of kinds).

``FAMILIES`` follows ``catalogue.PER_OBJECT`` exactly (a test checks it), so the exposition
headers, the docs and the rendered lines come from one list.
"""

from __future__ import annotations

from exporter.families import canary, compat, core, helmrelease, image, sources
from exporter.families._common import Family, ObjectState, escape_label, format_value, render_object

FAMILIES: tuple[Family, ...] = (
    *core.FAMILIES,
    *helmrelease.FAMILIES,
    *sources.FAMILIES,
    *image.FAMILIES,
    *canary.FAMILIES,
)
COMPAT_FAMILIES: tuple[Family, ...] = compat.FAMILIES


def families_for(compat_info: bool) -> tuple[Family, ...]:
    """The families the store renders; ``gotk_resource_info`` only when asked for."""
    return FAMILIES + COMPAT_FAMILIES if compat_info else FAMILIES


__all__ = [
    "COMPAT_FAMILIES",
    "FAMILIES",
    "Family",
    "ObjectState",
    "escape_label",
    "families_for",
    "format_value",
    "render_object",
]
