"""Reconnect delays as pure functions: the attempt, the settings and the randomness come in.

Kept apart from the watch loop so the schedule is table-tested without a clock or a server.
"""

from __future__ import annotations

import email.utils
import math

from exporter.settings import BackoffSettings

_MAX_EXPONENT = 64  # beyond this the delay is long since at its ceiling; avoids float overflow


def backoff_delay(
    attempt: int,
    settings: BackoffSettings,
    rand: float,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    ``rand`` is a uniform sample in [0, 1): jitter spreads the delay by ``settings.jitter`` either
    way, so clusters that failed together (a shared proxy restarting) do not retry in lockstep.
    A server's ``Retry-After`` is a floor, never shortened by jitter, and capped so a bad header
    cannot stall a cluster for long.
    """
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    base = min(settings.maximum_seconds, settings.initial_seconds * settings.multiplier**exponent)
    spread = 1.0 - settings.jitter + 2.0 * settings.jitter * min(max(rand, 0.0), 1.0)
    delay = min(base * spread, settings.maximum_seconds)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, settings.retry_after_cap_seconds))
    return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from now: either delta-seconds or an HTTP date (RFC 9110).

    Anything unparsable is ignored (None) rather than trusted.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)
