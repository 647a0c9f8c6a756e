"""The reconnect delay schedule: exponential, capped, jittered, and floored by Retry-After."""

from __future__ import annotations

import email.utils

import pytest

from exporter.kube.backoff import backoff_delay, parse_retry_after
from exporter.settings import BackoffSettings

S = BackoffSettings(
    initial_seconds=1.0,
    multiplier=2.0,
    maximum_seconds=60.0,
    jitter=0.2,
    retry_after_cap_seconds=300.0,
)
NO_JITTER = BackoffSettings(initial_seconds=1.0, multiplier=2.0, maximum_seconds=60.0, jitter=0.0)

CASES = [
    # (id, attempt, rand, retry_after, settings, expected)
    ("first-retry-mid-jitter", 0, 0.5, None, S, 1.0),
    ("first-retry-low-jitter", 0, 0.0, None, S, 0.8),
    ("first-retry-high-jitter", 0, 1.0, None, S, 1.2),
    ("third-retry", 2, 0.5, None, S, 4.0),
    ("sixth-retry-capped", 6, 0.5, None, S, 60.0),
    ("capped-high-jitter-stays-at-max", 10, 1.0, None, S, 60.0),
    ("capped-low-jitter", 10, 0.0, None, S, 48.0),
    ("huge-attempt-no-overflow", 10_000, 0.5, None, S, 60.0),
    ("negative-attempt-is-first", -3, 0.5, None, S, 1.0),
    ("retry-after-raises-floor", 0, 0.0, 30.0, S, 30.0),
    ("retry-after-below-backoff-ignored", 5, 0.5, 2.0, S, 32.0),
    ("retry-after-capped", 0, 0.5, 86_400.0, S, 300.0),
    ("retry-after-zero-ignored", 1, 0.5, 0.0, S, 2.0),
    ("no-jitter-exact", 3, 0.9, None, NO_JITTER, 8.0),
]


@pytest.mark.parametrize(
    ("attempt", "rand", "retry_after", "settings", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_backoff_delay(
    attempt: int, rand: float, retry_after: float | None, settings: BackoffSettings, expected: float
) -> None:
    assert backoff_delay(attempt, settings, rand, retry_after) == pytest.approx(expected)


def test_jitter_spreads_delays_of_clusters_that_failed_together() -> None:
    delays = {round(backoff_delay(3, S, r / 10), 3) for r in range(10)}
    assert len(delays) == 10
    assert min(delays) >= 8 * 0.8
    assert max(delays) <= 8 * 1.2


NOW = 1_700_000_000.0
RETRY_AFTER = [
    ("absent", None, None),
    ("empty", "  ", None),
    ("seconds", "120", 120.0),
    ("http-date-future", email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
    ("http-date-past", email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
    ("garbage", "soon", None),
    ("negative", "-5", None),
]


@pytest.mark.parametrize(
    ("header", "expected"), [c[1:] for c in RETRY_AFTER], ids=[c[0] for c in RETRY_AFTER]
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    result = parse_retry_after(header, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1.0)
