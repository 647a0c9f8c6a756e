"""The Flux kinds the simulator serves, with the API versions of a current and of an old Flux.

The table is data copied from the CRDs (group, plural, short names, which versions carry a
status subresource) so the server needs no CRD files at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FluxProfile = Literal["current", "legacy"]
PROFILES: tuple[FluxProfile, ...] = ("current", "legacy")

SOURCE = "source.toolkit.fluxcd.io"
KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
HELM = "helm.toolkit.fluxcd.io"
IMAGE = "image.toolkit.fluxcd.io"
NOTIFICATION = "notification.toolkit.fluxcd.io"
FLAGGER = "flagger.app"

GROUPS: tuple[str, ...] = (SOURCE, KUSTOMIZE, HELM, IMAGE, NOTIFICATION, FLAGGER)


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One served kind. ``legacy_version`` is what Flux v2.0-v2.7 era clusters still serve."""

    kind: str
    group: str
    plural: str
    version: str
    legacy_version: str
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    legacy_has_status: bool = True
    controller: str = ""

    def version_for(self, profile: FluxProfile) -> str:
        return self.version if profile == "current" else self.legacy_version

    def api_version(self, profile: FluxProfile) -> str:
        return f"{self.group}/{self.version_for(profile)}"

    def status_for(self, profile: FluxProfile) -> bool:
        return self.has_status if profile == "current" else self.legacy_has_status


_SC = "source-controller"
KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        "GitRepository", SOURCE, "gitrepositories", "v1", "v1beta2", ("gitrepo",), controller=_SC
    ),
    KindInfo(
        "OCIRepository", SOURCE, "ocirepositories", "v1", "v1beta2", ("ocirepo",), controller=_SC
    ),
    KindInfo("Bucket", SOURCE, "buckets", "v1", "v1beta2", controller=_SC),
    KindInfo(
        "HelmRepository", SOURCE, "helmrepositories", "v1", "v1beta2", ("helmrepo",), controller=_SC
    ),
    KindInfo("HelmChart", SOURCE, "helmcharts", "v1", "v1beta2", ("hc",), controller=_SC),
    KindInfo(
        "Kustomization",
        KUSTOMIZE,
        "kustomizations",
        "v1",
        "v1beta2",
        ("ks",),
        controller="kustomize-controller",
    ),
    KindInfo(
        "HelmRelease", HELM, "helmreleases", "v2", "v2beta2", ("hr",), controller="helm-controller"
    ),
    KindInfo(
        "ImageRepository",
        IMAGE,
        "imagerepositories",
        "v1",
        "v1beta2",
        ("imgrepo", "imagerepo"),
        controller="image-reflector-controller",
    ),
    KindInfo(
        "ImagePolicy",
        IMAGE,
        "imagepolicies",
        "v1",
        "v1beta2",
        ("imgpol", "imagepol"),
        controller="image-reflector-controller",
    ),
    KindInfo(
        "ImageUpdateAutomation",
        IMAGE,
        "imageupdateautomations",
        "v1",
        "v1beta2",
        ("iua", "imgupd", "imgauto"),
        controller="image-automation-controller",
    ),
    KindInfo(
        "Receiver", NOTIFICATION, "receivers", "v1", "v1beta2", controller="notification-controller"
    ),
    KindInfo(
        "Alert",
        NOTIFICATION,
        "alerts",
        "v1beta3",
        "v1beta3",
        has_status=False,
        legacy_has_status=False,
        controller="notification-controller",
    ),
    KindInfo(
        "Provider",
        NOTIFICATION,
        "providers",
        "v1beta3",
        "v1beta3",
        has_status=False,
        legacy_has_status=False,
        controller="notification-controller",
    ),
    KindInfo("Canary", FLAGGER, "canaries", "v1beta1", "v1beta1", controller="flagger"),
)

BY_KIND: dict[str, KindInfo] = {k.kind: k for k in KINDS}
BY_PLURAL: dict[str, KindInfo] = {k.plural: k for k in KINDS}


def kind_info(kind: str) -> KindInfo:
    """The table row of ``kind``; a clear ``KeyError`` names the kinds that exist."""
    try:
        return BY_KIND[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(sorted(BY_KIND))}") from None
