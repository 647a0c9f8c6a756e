"""Retry policy as tables: status classification, Retry-After, backoff, dead letters,
breaker, token bucket."""

from __future__ import annotations

import pytest

from notifiers.model import Fail, Ok, Outcome, Retry
from notifiers.retry import (
    Breaker,
    Bucket,
    Dead,
    Delivered,
    Reschedule,
    backoff,
    breaker_after,
    breaker_started,
    bucket_take,
    classify_status,
    next_step,
    parse_retry_after,
)

STATUS_TABLE = [
    (200, Ok),
    (201, Ok),
    (202, Ok),
    (204, Ok),
    (301, Fail),
    (302, Fail),
    (307, Fail),
    (400, Fail),
    (401, Fail),
    (403, Fail),
    (404, Fail),
    (409, Fail),
    (410, Fail),
    (413, Fail),
    (415, Fail),
    (422, Fail),
    (408, Retry),
    (425, Retry),
    (429, Retry),
    (500, Retry),
    (502, Retry),
    (503, Retry),
    (504, Retry),
    (599, Retry),
]


@pytest.mark.parametrize(("status", "kind"), STATUS_TABLE, ids=[str(s) for s, _ in STATUS_TABLE])
def test_classify_status(status: int, kind: type) -> None:
    assert isinstance(classify_status(status), kind)


def test_retry_after_travels_with_the_outcome() -> None:
    outcome = classify_status(429, retry_after=7.0)
    assert isinstance(outcome, Retry)
    assert outcome.after == 7.0


RETRY_AFTER = [
    ("seconds", "120", 120.0),
    ("http-date", "Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
    ("date-in-past", "Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ("garbage", "soon", None),
    ("non-ascii-digit", "\xb2", None),  # a latin-1 header byte that str.isdigit accepts
    ("absent", None, None),
]


@pytest.mark.parametrize(
    ("header", "expected"), [c[1:] for c in RETRY_AFTER], ids=[c[0] for c in RETRY_AFTER]
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert parse_retry_after(header, now) == expected


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [(1, 0.0, 0.5), (1, 1.0, 1.0), (3, 0.0, 2.0), (20, 1.0, 60.0)],
    ids=["1-low", "1-high", "3-low", "cap"],
)
def test_backoff_equal_jitter(attempt: int, draw: float, expected: float) -> None:
    assert backoff(attempt, initial=1.0, multiplier=2.0, cap=60.0, draw=draw) == pytest.approx(
        expected
    )


POLICY = {
    "initial": 1.0,
    "multiplier": 2.0,
    "cap": 60.0,
    "max_attempts": 5,
    "max_age": 3600.0,
    "max_retry_after": 600.0,
    "draw": 0.0,
}
STEPS: list[tuple[str, Outcome, int, float, type, float | None]] = [
    ("ok", Ok(), 1, 100.0, Delivered, None),
    ("permanent", Fail("HTTP 410"), 1, 100.0, Dead, None),
    ("retry-backoff", Retry("HTTP 500"), 1, 100.0, Reschedule, 100.5),
    ("retry-after-honoured", Retry("HTTP 429", after=30.0), 1, 100.0, Reschedule, 130.0),
    ("retry-after-capped", Retry("HTTP 429", after=99999.0), 1, 100.0, Reschedule, 700.0),
    ("attempts-exhausted", Retry("HTTP 500"), 5, 100.0, Dead, None),
    ("too-old", Retry("timeout"), 2, 3700.0, Dead, None),
]


@pytest.mark.parametrize(
    ("outcome", "attempts", "now", "kind", "at"), [s[1:] for s in STEPS], ids=[s[0] for s in STEPS]
)
def test_next_step(
    outcome: Outcome, attempts: int, now: float, kind: type, at: float | None
) -> None:
    step = next_step(outcome, attempts=attempts, created_at=0.0, now=now, **POLICY)  # type: ignore[arg-type]
    assert isinstance(step, kind)
    if at is not None:
        assert isinstance(step, Reschedule)
        assert step.at == pytest.approx(at)


def test_breaker_opens_half_opens_and_closes() -> None:
    b = Breaker()
    for _ in range(3):
        b = breaker_after(breaker_started(b), False, 10.0, threshold=3)
    assert b.is_open
    assert not b.allows(10.5, cooldown=5.0)
    assert b.allows(15.0, cooldown=5.0)
    probing = breaker_started(b)
    assert not probing.allows(15.0, cooldown=5.0)  # one probe at a time
    assert breaker_after(probing, False, 15.1, threshold=3).opened_at == 15.1  # probe failed
    assert not breaker_after(probing, True, 15.1, threshold=3).is_open  # probe succeeded


def test_token_bucket() -> None:
    bucket = Bucket(2.0, 0.0)
    ok1, bucket, _ = bucket_take(bucket, 0.0, rate=1.0, burst=2)
    ok2, bucket, _ = bucket_take(bucket, 0.0, rate=1.0, burst=2)
    ok3, bucket, wait = bucket_take(bucket, 0.0, rate=1.0, burst=2)
    assert (ok1, ok2, ok3) == (True, True, False)
    assert wait == pytest.approx(1.0)
    ok4, _, _ = bucket_take(bucket, 1.0, rate=1.0, burst=2)
    assert ok4
