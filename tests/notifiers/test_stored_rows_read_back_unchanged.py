"""The outbox's fast row encoding reads back exactly what ``json`` would have stored."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from notifiers.store import compact_json

CASES: list[tuple[str, Any, tuple[float | None, ...]]] = [
    ("plain-event-fields", {"id": "a1", "received_at": 1764483000.123456, "labels": {}}, (1.5,)),
    ("non-ascii-text", {"message": "Übergang fehlgeschlagen: ✗ 失败"}, ()),
    ("control-characters-and-quotes", {"message": 'line1\nline2\t"quoted"\\'}, ()),
    ("lone-surrogate-falls-back", {"message": "broken \ud800 text"}, ()),
    ("big-integer-falls-back", {"n": 2**70}, ()),
    ("non-string-key-falls-back", {1: "one"}, ()),
    ("nan-falls-back", {"latency_seconds": math.nan}, (math.nan,)),
    ("infinity-falls-back", [(1, "sink", "g", "r", 1.0, math.inf, 300.0)], (1.0, math.inf, 300.0)),
    ("target-rows", [(7, "sink", "route|e1", "route", 1.25, 31.25, 300.0)], (1.25, 31.25, 300.0)),
    ("none-float", {"latency_seconds": None}, (None,)),
]


@pytest.mark.parametrize(("value", "floats"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_compact_json_reads_back_like_json(value: Any, floats: tuple[float | None, ...]) -> None:
    stored = compact_json(value, *floats)
    assert isinstance(stored, str)  # TEXT, never a BLOB (SQLite's JSON functions read TEXT)
    expected = json.loads(json.dumps(value, separators=(",", ":")))
    # repr() compares NaN equal to itself and tells 2**70 from the float orjson would make.
    assert repr(json.loads(stored)) == repr(expected)
