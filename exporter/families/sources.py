"""Source kinds (GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart,
ExternalArtifact): the current artifact's size and age."""

from __future__ import annotations

from catalogue import exporter as c
from exporter.families._common import Family, one

FAMILIES: tuple[Family, ...] = (
    Family(c.SOURCE_ARTIFACT_SIZE, lambda s: one(s.derived.artifact_size)),
    Family(c.SOURCE_ARTIFACT_UPDATED, lambda s: one(s.derived.artifact_updated)),
)
