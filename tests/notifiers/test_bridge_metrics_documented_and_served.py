"""The bridge's metric catalogue, what /metrics serves and docs/bridge.md agree in both directions.

Dashboards and alerts read metric names only from ``catalogue.bridge``; a family served but not
catalogued, catalogued but undocumented, or documented but gone, breaks here first.
"""

from __future__ import annotations

import re

import pytest

from catalogue import bridge as catalogue
from catalogue.specs import MetricSpec
from notifiers.metrics import BridgeMetrics, DestinationView
from tests.conftest import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "bridge.md").read_text()
ROW = re.compile(r"^\| `(fluxwatch_bridge_\w+)` \| (\w+) \|([^|]*)\|", re.MULTILINE)


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Rows of the bridge's metrics table: name -> (type, labels in order)."""
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, type_, labels in ROW.findall(DOC):
        assert name not in rows, f"{name} documented twice"
        rows[name] = (type_, tuple(re.findall(r"`(\w+)`", labels)))
    return rows


def test_every_documented_family_is_in_the_catalogue() -> None:
    rows = documented()
    assert rows, "no metrics table found in docs/bridge.md"
    unknown = sorted(set(rows) - set(catalogue.BY_NAME))
    assert unknown == [], f"documented but not in catalogue.bridge: {unknown}"


@pytest.mark.parametrize("spec", catalogue.ALL, ids=[s.name for s in catalogue.ALL])
def test_catalogue_family_is_documented_with_its_type_and_labels(spec: MetricSpec) -> None:
    rows = documented()
    assert spec.name in rows, f"{spec.name} missing from docs/bridge.md"
    assert rows[spec.name] == (spec.type, spec.labels)


class _OneDestination:
    def destinations_view(self) -> dict[str, DestinationView]:
        return {"ci": DestinationView(queued=3, oldest_pending_age=1.5, dead=1, circuit_open=True)}


def test_served_families_are_exactly_the_catalogue() -> None:
    metrics = BridgeMetrics()
    metrics.queue.view = _OneDestination()
    served = {(m.name, m.type) for m in metrics.registry.collect()}
    alone = [s for s in catalogue.ALL if s not in catalogue.REPLICAS]  # an SQLite bridge
    assert served == {(spec.family, spec.type) for spec in alone}
    metrics.add_replica_metrics()  # a replica on a shared PostgreSQL outbox
    served = {(m.name, m.type) for m in metrics.registry.collect()}
    assert served == {(spec.family, spec.type) for spec in catalogue.ALL}
    # Label names come from the specs too, in the specs' order.
    for family in metrics.registry.collect():
        for sample in family.samples:
            spec = catalogue.BY_NAME.get(family.name + "_total", catalogue.BY_NAME.get(family.name))
            assert spec is not None
            assert tuple(k for k in sample.labels if k != "le") == spec.labels
