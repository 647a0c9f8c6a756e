"""The generated dashboards, byte for byte, against golden files (and a second run is equal).

Regenerate with ``FLUXWATCH_UPDATE_GOLDEN=1 pytest tests/dashboards/test_dashboards_golden.py``
and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dashboards.build import dumps, generate, render

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("FLUXWATCH_UPDATE_GOLDEN") == "1"


def test_generated_json_matches_the_golden_files() -> None:
    files = render(generate(), "json")
    if UPDATE:
        for old in GOLDEN.glob("*.json"):
            old.unlink()
        for name, content in files.items():
            (GOLDEN / name).write_text(content, encoding="utf-8")
    assert sorted(p.name for p in GOLDEN.glob("*.json")) == sorted(files)
    for name, content in files.items():
        assert (GOLDEN / name).read_text(encoding="utf-8") == content, name


def test_output_is_deterministic() -> None:
    first = {uid: dumps(b) for uid, b in generate().items()}
    second = {uid: dumps(b) for uid, b in generate().items()}
    assert first == second
    for uid, body in first.items():
        assert f'"uid": "{uid}"' in body
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:", body), f"{uid} carries a timestamp"
