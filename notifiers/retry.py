"""Retry policy written once: status classification, backoff, dead letters, breaker, rate limit.

All pure, with the clock and the random draw passed in, so every branch is table-tested.
Providers classify responses (``classify_status`` is the default they start from); this module
decides what happens next.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from notifiers.model import Fail, Ok, Outcome, Retry

# 408 timeout, 425 too early, 429 throttled: the request may succeed later. 5xx: server trouble.
_RETRY_4XX = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():  # str.isdigit alone admits "²", which float() refuses
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify_status(status: int, retry_after: float | None = None) -> Outcome:
    """The default HTTP policy (Standard Webhooks / CloudEvents webhook spec).

    2xx done; 429, 408, 425 and 5xx retried, honouring Retry-After; 3xx is a failure (senders must
    not follow redirects) and, like other 4xx (410 Gone above all), permanent: repeating the same
    request cannot succeed, so it goes to the dead letters for an operator to replay.
    """
    if 200 <= status < 300:
        return Ok(f"HTTP {status}")
    if status in _RETRY_4XX or 500 <= status < 600:
        return Retry(f"HTTP {status}", after=retry_after, status_code=status)
    if 300 <= status < 400:
        return Fail(f"HTTP {status}: redirects are not followed", status_code=status)
    return Fail(f"HTTP {status}", status_code=status)


def backoff(attempt: int, *, initial: float, multiplier: float, cap: float, draw: float) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1), with "equal jitter".

    Half the exponential step is fixed and half random (AWS "Exponential Backoff And Jitter"), so
    retries of a burst spread out but never collapse to zero. ``draw`` is uniform in [0, 1).
    """
    step = min(cap, initial * multiplier ** max(0, attempt - 1))
    return step / 2 + step / 2 * draw


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Reschedule:
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Dead:
    reason: str


NextStep = Delivered | Reschedule | Dead


def next_step(
    outcome: Outcome,
    *,
    attempts: int,
    created_at: float,
    now: float,
    initial: float,
    multiplier: float,
    cap: float,
    max_attempts: int,
    max_age: float,
    max_retry_after: float,
    draw: float,
) -> NextStep:
    """What to record after an attempt; ``attempts`` includes the one just made."""
    if isinstance(outcome, Ok):
        return Delivered()
    if isinstance(outcome, Fail):
        return Dead(f"permanent: {outcome.reason}")
    if attempts >= max_attempts:
        return Dead(f"gave up after {attempts} attempts: {outcome.reason}")
    if outcome.after is not None:
        delay = min(max(outcome.after, 0.0), max_retry_after)
    else:
        delay = backoff(attempts, initial=initial, multiplier=multiplier, cap=cap, draw=draw)
    if now + delay - created_at > max_age:
        return Dead(f"gave up after {max_age:.0f}s: {outcome.reason}")
    return Reschedule(now + delay, outcome.reason)


# ---- circuit breaker (one per destination) ----


@dataclass(frozen=True, slots=True)
class Breaker:
    """Closed -> open after N consecutive failures -> half-open after cooldown (one probe)."""

    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def allows(self, now: float, cooldown: float) -> bool:
        if self.opened_at is None:
            return True
        return not self.probing and now - self.opened_at >= cooldown

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


def breaker_started(b: Breaker) -> Breaker:
    """An attempt starts; if the breaker was open (cooldown over) this attempt is the probe."""
    return Breaker(b.failures, b.opened_at, probing=b.opened_at is not None)


def breaker_after(b: Breaker, success: bool, now: float, threshold: int) -> Breaker:
    """Only transport-level trouble counts (timeouts, 5xx, 429), not permanent 4xx."""
    if success:
        return Breaker()
    failures = b.failures + 1
    if b.opened_at is not None or failures >= threshold:
        return Breaker(failures, now, probing=False)
    return Breaker(failures, None, probing=False)


# ---- token bucket (one per destination) ----


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated: float


def bucket_take(b: Bucket, now: float, rate: float, burst: int) -> tuple[bool, Bucket, float]:
    """Take one token: (allowed, new bucket, seconds until a token is available if refused)."""
    if rate <= 0:
        return True, b, 0.0
    tokens = min(float(burst), b.tokens + (now - b.updated) * rate)
    if tokens >= 1.0:
        return True, Bucket(tokens - 1.0, now), 0.0
    return False, Bucket(tokens, now), (1.0 - tokens) / rate
