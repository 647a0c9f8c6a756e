"""The bridge's garbage-collector tuning: young threshold raised, never lowered, start frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from notifiers.app import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


CASES = [
    ("cpython-default-is-raised", 700, GC_YOUNG_THRESHOLD),
    ("higher-operator-setting-is-kept", GC_YOUNG_THRESHOLD * 5, GC_YOUNG_THRESHOLD * 5),
    ("disabled-by-threshold-stays-disabled", 0, 0),
]


@pytest.mark.parametrize(("before", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.usefixtures("restore_gc")
def test_young_threshold(before: int, after: int) -> None:
    _, middle, old = gc.get_threshold()
    gc.set_threshold(before, middle, old)
    tune_gc()
    assert gc.get_threshold() == (after, middle, old)


@pytest.mark.usefixtures("restore_gc")
def test_objects_alive_at_start_are_frozen() -> None:
    gc.unfreeze()  # earlier bridges in this process froze theirs
    long_lived = [{"state": i} for i in range(100)]  # tracked containers, like loaded state
    assert gc.get_freeze_count() == 0
    tune_gc()
    assert gc.get_freeze_count() >= len(long_lived)
