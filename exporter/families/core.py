"""Families every Flux kind has: status, info, timestamps, interval, drift, inventory."""

from __future__ import annotations

from collections.abc import Sequence

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.families._common import ObjectState, Sample, Sampler, one


def _status(s: ObjectState) -> Sequence[Sample]:
    d = s.derived
    root = s.root
    if root is None or d.status == "ready":
        return (((d.status, d.reason, "", "", "", ""), 1.0),)
    return (((d.status, d.reason, root.kind, root.namespace, root.name, root.reason), 1.0),)


def _info(s: ObjectState) -> Sequence[Sample]:
    d = s.derived
    src_kind, src_ns, src_name = d.source if d.source is not None else ("", "", "")
    url = d.url or d.endpoint or d.webhook_path or d.image
    values = (
        d.api_version,
        d.applied_revision,
        d.attempted_revision,
        src_kind,
        src_ns,
        src_name,
        d.shard,
        d.tenant,
        d.chart_name,
        d.chart_version,
        url,
        d.ref,
        d.path,
        "true" if d.suspended else "false",
    )
    return ((values, 1.0),)


def _drift(s: ObjectState) -> Sequence[Sample]:
    d = s.derived
    return (((d.applied_revision, s.wanted_revision), 1.0 if s.wanted_revision else 0.0),)


def _drift_since(s: ObjectState) -> Sequence[Sample]:
    return one(s.drift_since if s.wanted_revision else None)


SAMPLERS: dict[MetricSpec, Sampler] = {
    c.RESOURCE_STATUS: _status,
    c.RESOURCE_STATUS_SINCE: lambda s: one(s.since),
    c.RESOURCE_INFO: _info,
    c.RESOURCE_LAST_SUCCESS: lambda s: one(s.derived.last_success),
    c.RESOURCE_LAST_ATTEMPT: lambda s: one(s.derived.last_attempt),
    c.RESOURCE_INTERVAL: lambda s: one(s.derived.interval),
    c.RESOURCE_GENERATION_LAG: lambda s: one(s.derived.generation_lag),
    c.RESOURCE_DRIFT: _drift,
    c.RESOURCE_DRIFT_SINCE: _drift_since,
    c.INVENTORY_ENTRIES: lambda s: one(s.derived.inventory),
}
