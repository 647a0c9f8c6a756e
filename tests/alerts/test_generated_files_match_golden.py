"""Generated rule files and the shipped examples are byte-stable: the same settings give the same
bytes, and any change shows up as a golden-file diff to review.

Regenerate with ``FLUXWATCH_UPDATE_GOLDEN=1 pytest tests/alerts/`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alerts.alertmanager import example_config
from alerts.render import FORMATS, Format, dump_yaml, render
from alerts.settings import AlertSettings
from tests.alerts.variants import VARIANTS
from tests.conftest import REPO_ROOT

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = REPO_ROOT / "alerts" / "examples"
UPDATE = os.environ.get("FLUXWATCH_UPDATE_GOLDEN") == "1"


def check(path: Path, text: str) -> None:
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{path} differs; regenerate and review"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rule_file_matches_golden(variant: str, fmt: Format) -> None:
    text = render(VARIANTS[variant], fmt)
    assert render(VARIANTS[variant], fmt) == text  # deterministic within a run too
    check(GOLDEN / f"{variant}-{fmt}.yml", text)


def test_shipped_examples_are_the_generated_defaults() -> None:
    check(EXAMPLES / "fluxwatch-rules.yml", render(AlertSettings(), "rules"))
    check(EXAMPLES / "alertmanager.yml", dump_yaml(example_config(AlertSettings())))
