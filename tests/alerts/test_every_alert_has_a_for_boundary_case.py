"""Every generated alert has a timeline case (pending, firing, resolved) in one of the
``test_*_alerts_fire_at_their_for_boundary.py`` files: a new alert without one fails here."""

from __future__ import annotations

from alerts.rules import alert_names
from tests.alerts import test_fleet_alerts_fire_at_their_for_boundary as fleet
from tests.alerts import test_fluxwatch_health_alerts_fire_at_their_for_boundary as health
from tests.alerts import test_object_alerts_fire_at_their_for_boundary as objects


def test_every_alert_has_a_case() -> None:
    cases = [*objects.CASES, *fleet.CASES, *health.CASES]
    assert sorted({c.alert for c in cases}) == alert_names()
