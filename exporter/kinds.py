"""The Flux kinds fluxwatch watches, with the API versions a cluster may serve, newest first.

Pure data. The watch layer resolves each kind per cluster through discovery and uses the first
listed version that the cluster serves, so a fleet with older Flux releases (v1beta2, v2beta2) or
without an optional group (image automation, Flagger) works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FluxKind:
    kind: str
    group: str
    plural: str
    versions: tuple[str, ...]  # preference order, newest first
    has_status: bool = True  # Alert and Provider v1beta3 have no status subresource


KINDS: tuple[FluxKind, ...] = (
    FluxKind("GitRepository", "source.toolkit.fluxcd.io", "gitrepositories", ("v1", "v1beta2")),
    FluxKind("OCIRepository", "source.toolkit.fluxcd.io", "ocirepositories", ("v1", "v1beta2")),
    FluxKind("Bucket", "source.toolkit.fluxcd.io", "buckets", ("v1", "v1beta2")),
    FluxKind("HelmRepository", "source.toolkit.fluxcd.io", "helmrepositories", ("v1", "v1beta2")),
    FluxKind("HelmChart", "source.toolkit.fluxcd.io", "helmcharts", ("v1", "v1beta2")),
    FluxKind("ExternalArtifact", "source.toolkit.fluxcd.io", "externalartifacts", ("v1",)),
    FluxKind("Kustomization", "kustomize.toolkit.fluxcd.io", "kustomizations", ("v1", "v1beta2")),
    FluxKind("HelmRelease", "helm.toolkit.fluxcd.io", "helmreleases", ("v2", "v2beta2", "v2beta1")),
    FluxKind("ImageRepository", "image.toolkit.fluxcd.io", "imagerepositories", ("v1", "v1beta2")),
    FluxKind("ImagePolicy", "image.toolkit.fluxcd.io", "imagepolicies", ("v1", "v1beta2")),
    FluxKind(
        "ImageUpdateAutomation",
        "image.toolkit.fluxcd.io",
        "imageupdateautomations",
        ("v1", "v1beta2"),
    ),
    FluxKind("Receiver", "notification.toolkit.fluxcd.io", "receivers", ("v1", "v1beta2")),
    FluxKind("Alert", "notification.toolkit.fluxcd.io", "alerts", ("v1beta3", "v1beta2"), False),
    FluxKind(
        "Provider", "notification.toolkit.fluxcd.io", "providers", ("v1beta3", "v1beta2"), False
    ),
    FluxKind("Canary", "flagger.app", "canaries", ("v1beta1",)),
)

KINDS_BY_NAME: dict[str, FluxKind] = {k.kind: k for k in KINDS}

SOURCE_KINDS = frozenset(
    {"GitRepository", "OCIRepository", "Bucket", "HelmRepository", "HelmChart", "ExternalArtifact"}
)
# Kinds whose artifact revision an applier records verbatim (a HelmRepository offers an index,
# not a revision): the sources that drift and commit-to-applied latency compare against.
REVISION_SOURCES = frozenset(
    {"GitRepository", "OCIRepository", "Bucket", "ExternalArtifact", "HelmChart"}
)
