"""The exporter keeps the Git revision an OCI artifact was built from (the source's artifact
annotation, the Kustomization's ``lastAppliedOriginRevision``) and reports it with the revision it
belongs to, so the bridge can put an OCI rollout's fleet status on that commit."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.families._common import ObjectState
from exporter.rollouts import object_report, target_origin
from exporter.status import Derived, derive

OCI_OLD = f"latest@sha256:{'0' * 64}"
OCI_NEW = f"latest@sha256:{'1' * 64}"
ORIGIN_OLD = f"main@sha1:{'a' * 40}"
ORIGIN_NEW = f"main@sha1:{'b' * 40}"


def obj(kind: str, status: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "podinfo", "namespace": "apps", "uid": "u1", "generation": 1},
        "spec": spec or {},
        "status": status,
    }


@pytest.mark.parametrize(
    ("kind", "status", "origin", "surprises"),
    [
        ("Kustomization", {"lastAppliedOriginRevision": ORIGIN_OLD}, ORIGIN_OLD, ()),
        ("Kustomization", {"lastAppliedRevision": OCI_OLD}, "", ()),  # v1beta2, or Git
        ("Kustomization", {"lastAppliedOriginRevision": 7}, "", ("bad_field_type",)),
        (
            "OCIRepository",
            {
                "artifact": {
                    "revision": OCI_NEW,
                    "metadata": {"org.opencontainers.image.revision": ORIGIN_NEW},
                }
            },
            ORIGIN_NEW,
            (),
        ),
        ("OCIRepository", {"artifact": {"revision": OCI_NEW}}, "", ()),
        (
            "OCIRepository",
            {"artifact": {"revision": OCI_NEW, "metadata": []}},
            "",
            ("bad_field_type",),
        ),
    ],
)
def test_origin_revision_is_read(
    kind: str, status: dict[str, Any], origin: str, surprises: tuple[str, ...]
) -> None:
    spec = (
        {"sourceRef": {"kind": "OCIRepository", "name": "podinfo"}}
        if kind == "Kustomization"
        else {}
    )
    derived, seen = derive(kind, obj(kind, status, spec))
    assert derived.origin_revision == origin
    assert set(surprises) <= set(seen)


def ks(applied: str, origin: str, wanted: str = "") -> ObjectState:
    d = Derived("Kustomization", "apps", "podinfo", "u1", applied_revision=applied,
                attempted_revision=applied, origin_revision=origin)  # fmt: skip
    return ObjectState("c0", d, wanted_revision=wanted)


def source(offered: str, origin: str) -> Derived:
    return Derived("OCIRepository", "apps", "podinfo", "u2", offered_revision=offered,
                   origin_revision=origin)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "src", "origin"),
    [
        (ks(OCI_OLD, ORIGIN_OLD), source(OCI_OLD, ORIGIN_OLD), ORIGIN_OLD),  # applied
        (ks(OCI_OLD, ORIGIN_OLD), None, ORIGIN_OLD),  # source not watched: the applier says
        # the new artifact is wanted: its origin comes from the source, not the applied one
        (ks(OCI_OLD, ORIGIN_OLD, wanted=OCI_NEW), source(OCI_NEW, ORIGIN_NEW), ORIGIN_NEW),
        (ks(OCI_OLD, ORIGIN_OLD, wanted=OCI_NEW), None, ""),
        (ks(OCI_OLD, ORIGIN_OLD, wanted=OCI_NEW), source(OCI_OLD, ORIGIN_OLD), ""),
        (ks("", ""), source(OCI_NEW, ORIGIN_NEW), ""),  # nothing to roll out
    ],
)
def test_target_origin(state: ObjectState, src: Derived | None, origin: str) -> None:
    assert target_origin(state, src) == origin
    report = object_report(state, "oci://ghcr.io/acme/podinfo", origin)
    assert report["origin_revision"] == origin
    assert report["origin_of"] == ((state.wanted_revision or OCI_OLD) if origin else "")
