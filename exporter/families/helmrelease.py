"""HelmRelease: failure counters, drift detection and the last attempted release action."""

from __future__ import annotations

from collections.abc import Sequence

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.families._common import ObjectState, Sample, Sampler, one


def _last_action(s: ObjectState) -> Sequence[Sample]:
    action = s.derived.last_action
    return (((action,), 1.0),) if action else ()


SAMPLERS: dict[MetricSpec, Sampler] = {
    c.HELMRELEASE_FAILURES: lambda s: one(s.derived.failures),
    c.HELMRELEASE_INSTALL_FAILURES: lambda s: one(s.derived.install_failures),
    c.HELMRELEASE_UPGRADE_FAILURES: lambda s: one(s.derived.upgrade_failures),
    c.HELMRELEASE_DRIFTED: lambda s: one(s.derived.drifted),
    c.HELMRELEASE_LAST_ACTION: _last_action,
}
