"""Image automation: the tag an ImagePolicy selects, the ImageRepository's last scan."""

from __future__ import annotations

from collections.abc import Sequence

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.families._common import ObjectState, Sample, Sampler, one


def _latest(s: ObjectState) -> Sequence[Sample]:
    d = s.derived
    if not d.latest_image and not d.latest_tag:
        return ()
    return (((d.latest_image, d.latest_tag), 1.0),)


SAMPLERS: dict[MetricSpec, Sampler] = {
    c.IMAGEPOLICY_LATEST: _latest,
    c.IMAGEREPOSITORY_TAGS: lambda s: one(s.derived.tags),
    c.IMAGEREPOSITORY_LAST_SCAN: lambda s: one(s.derived.last_scan),
}
