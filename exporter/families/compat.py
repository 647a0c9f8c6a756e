"""``gotk_resource_info`` with the labels of fluxcd/flux2-monitoring-example's kube-state-metrics
custom-resource config (plus ``cluster``), so community dashboards keep working unchanged.

Per kind the config sets different extra labels; a label the config does not set for a kind is
left out, exactly as kube-state-metrics leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalogue import exporter as c
from exporter.families._common import Family, ObjectState, Sample

_NO_READY = frozenset({"Alert", "Provider"})


def _gotk(s: ObjectState) -> Sequence[Sample]:
    d = s.derived
    group, _, version = d.api_version.rpartition("/")
    extra: dict[str, str] = {}
    if d.kind == "Kustomization":
        extra = {"revision": d.applied_revision, "source_name": d.source[2] if d.source else ""}
    elif d.kind == "HelmRelease":
        extra = {
            "revision": d.chart_version,
            "chart_name": d.chart_name,
            "chart_app_version": d.chart_app_version,
            "chart_ref_name": d.chart_ref_name,
            "chart_source_name": d.chart_source_name,
        }
    elif d.kind in ("GitRepository", "HelmRepository", "OCIRepository"):
        extra = {"revision": d.applied_revision, "url": d.url}
    elif d.kind == "Bucket":
        extra = {
            "revision": d.applied_revision,
            "endpoint": d.endpoint,
            "bucket_name": d.bucket_name,
        }
    elif d.kind == "HelmChart":
        extra = {
            "revision": d.applied_revision,
            "chart_name": d.chart_name,
            "chart_version": d.chart_version,
        }
    elif d.kind == "Receiver":
        extra = {"webhook_path": d.webhook_path}
    elif d.kind == "ImageRepository":
        extra = {"image": d.image}
    elif d.kind in ("ImagePolicy", "ImageUpdateAutomation"):
        extra = {"source_name": d.source[2] if d.source else ""}
    base = {
        "customresource_group": group,
        "customresource_kind": d.kind,
        "customresource_version": version,
        "exported_namespace": d.namespace,
        "name": d.name,
        "ready": "" if d.kind in _NO_READY else (d.ready_condition or "Unknown"),
        "suspended": "true" if d.suspended else "false",
        **extra,
    }
    return ((tuple(base.get(label, "") for label in c.GOTK_RESOURCE_INFO.labels[1:]), 1.0),)


FAMILIES: tuple[Family, ...] = (Family(c.GOTK_RESOURCE_INFO, _gotk, cluster_only_identity=True),)
