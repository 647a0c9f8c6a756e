"""Source kinds (GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart,
ExternalArtifact): the current artifact's size and age."""

from __future__ import annotations

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.families._common import Sampler, one

SAMPLERS: dict[MetricSpec, Sampler] = {
    c.SOURCE_ARTIFACT_SIZE: lambda s: one(s.derived.artifact_size),
    c.SOURCE_ARTIFACT_UPDATED: lambda s: one(s.derived.artifact_updated),
}
