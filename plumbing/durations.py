"""One duration syntax for every key of ``fluxwatch.yaml``: ``90s``, ``5m``, ``1h30m``, seconds."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
EXPECTED = "expected a duration such as 90s, 5m, 1h30m or a number of seconds"


def parse_seconds(value: Any) -> float:
    """Seconds from ``250ms``, ``30s``, ``5m``, ``1h``, ``7d``, ``1h30m`` or a plain number.

    Raises ``ValueError`` with a message (no key path: the caller adds where the value was).
    """
    if isinstance(value, bool):
        raise ValueError(f"{EXPECTED}, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{EXPECTED}, got {value!r}")
    text = value.strip()
    parts = list(_PART.finditer(text))
    if not text or "".join(p.group(0) for p in parts) != text:
        raise ValueError(f"{EXPECTED}, got {value!r}")
    return sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts)
