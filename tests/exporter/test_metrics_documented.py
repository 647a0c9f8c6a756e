"""docs/metrics.md describes every family of the catalogue."""

from __future__ import annotations

import pytest

from catalogue import exporter as catalogue
from tests.conftest import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "metrics.md").read_text()


@pytest.mark.parametrize("spec", catalogue.ALL, ids=[s.name for s in catalogue.ALL])
def test_family_is_documented(spec: catalogue.MetricSpec) -> None:
    assert f"| `{spec.name}` | {spec.type} |" in DOC
    for label in spec.labels:
        assert f"`{label}`" in DOC, f"label {label} of {spec.name} undocumented"
