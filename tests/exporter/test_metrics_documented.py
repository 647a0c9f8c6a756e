"""docs/metrics.md documents exactly the catalogue: every family in its own table row with its
type and its own labels, and no row for a family the exporter does not serve."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from catalogue import exporter as catalogue
from tests.conftest import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "metrics.md").read_text()

_ROW = re.compile(r"^\| `(?P<name>[a-z_:][a-z0-9_:]*)` \| (?P<type>[a-z]+) \|(?P<labels>[^|]*)\|")
_LABEL = re.compile(r"`([a-zA-Z_][a-zA-Z0-9_]*)`")
_ASIDE = re.compile(r"\([^)]*\)")  # "(`sharding.fluxcd.io/key`)", "(`true`/`false`)": not labels


@dataclass(frozen=True)
class DocumentedFamily:
    type: str
    labels: frozenset[str]


def documented_families(text: str) -> dict[str, DocumentedFamily]:
    """The metric table rows of a page: ``| `name` | type | labels | meaning |``."""
    found: dict[str, DocumentedFamily] = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match is None or match["type"] not in ("gauge", "counter", "histogram"):
            continue
        assert match["name"] not in found, f"{match['name']} has two rows"
        labels = frozenset(_LABEL.findall(_ASIDE.sub("", match["labels"])))
        found[match["name"]] = DocumentedFamily(match["type"], labels)
    return found


DOCUMENTED = documented_families(DOC)


def _own_labels(spec: catalogue.MetricSpec) -> frozenset[str]:
    """The labels a row lists: per-object rows leave out the identity labels (the table header
    names them once), other rows list every label."""
    if spec.per_object and spec.labels[: len(catalogue.IDENTITY_LABELS)] == (
        catalogue.IDENTITY_LABELS
    ):
        return frozenset(spec.labels[len(catalogue.IDENTITY_LABELS) :])
    return frozenset(spec.labels)


@pytest.mark.parametrize("spec", catalogue.ALL, ids=[s.name for s in catalogue.ALL])
def test_family_is_documented_with_its_type_and_labels(spec: catalogue.MetricSpec) -> None:
    row = DOCUMENTED.get(spec.name)
    assert row is not None, f"{spec.name} has no row in docs/metrics.md"
    assert row.type == spec.type
    assert row.labels == _own_labels(spec), (
        f"{spec.name}: labels documented in its row {sorted(row.labels)}, "
        f"served {sorted(_own_labels(spec))}"
    )


def test_every_documented_family_is_served() -> None:
    served = {spec.name for spec in catalogue.ALL}
    assert set(DOCUMENTED) - served == set(), "documented but not in the catalogue"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("| `flux_x` | gauge | `cluster`, `kind` | x |", None),
        ("| `flux_x` | gauge | `cluster` | x |", "missing label"),
        ("| `flux_x` | gauge | `cluster`, `kind`, `tenant` | x |", "extra label"),
        ("| `flux_x` | counter | `cluster`, `kind` | x |", "wrong type"),
    ],
)
def test_the_check_reads_labels_from_the_family_own_row(row: str, problem: str | None) -> None:
    # A label named anywhere else on the page (here in another row) does not count for flux_x.
    page = f"{row}\n| `flux_y` | gauge | `cluster`, `kind`, `tenant` | y |\n"
    spec = catalogue.MetricSpec("flux_x", "x", "gauge", ("cluster", "kind"))
    got = documented_families(page)["flux_x"]
    matches = got.type == spec.type and got.labels == _own_labels(spec)
    assert matches == (problem is None)


def test_metric_rows_in_the_exporter_guide_match_the_catalogue() -> None:
    """docs/exporter.md repeats some families (the watch layer's); each row there must agree."""
    guide = documented_families((REPO_ROOT / "docs" / "exporter.md").read_text())
    assert guide, "docs/exporter.md lists no metric rows"
    for name, row in guide.items():
        spec = catalogue.BY_NAME.get(name)
        assert spec is not None, f"docs/exporter.md documents {name}, which is not served"
        assert (row.type, row.labels) == (spec.type, _own_labels(spec)), name
