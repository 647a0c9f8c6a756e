"""Per-kind derivation: what each Flux kind adds to the fields every object has.

``EXTRACTORS`` maps a kind to one function that reads that kind's spec and status into the
``Derived`` fields; a new Flux kind is one entry here and one function. ``exporter.status.derive``
fills the common fields first (identity, status from the conditions, interval, the Ready=True
time) and then calls the kind's extractor, which may refine or override them (a Canary's status
comes from its phase, not from conditions).

Last attempt: only a field that the controller writes on every run says when the object last
ran, so only those are used: a Kustomization's ``history[0].lastReconciled`` (Flux >= 2.7), an
ImageRepository's ``lastScanResult.scanTime`` and an ImageUpdateAutomation's
``lastAutomationRunTime``. Everything else (condition transitions, a HelmRelease's
``lastDeployed``, a source's artifact time) moves only when something changes, so a healthy
object would look hours "stale": there the last attempt is left unknown and not exported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.reader import Reader

ObjKey = tuple[str, str, str]  # (kind, namespace, name)
# where `flux push artifact` records the Git commit an OCI artifact was built from
OCI_REVISION_ANNOTATION = "org.opencontainers.image.revision"
Fields = dict[str, Any]  # keyword arguments of ``exporter.status.Derived``


@dataclass(frozen=True, slots=True)
class ObjectView:
    """The parts of one raw object an extractor reads."""

    r: Reader
    kind: str
    namespace: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    conditions: Mapping[str, Mapping[str, Any]]
    suspended: bool


Extractor = Callable[[ObjectView, Fields], None]


def newest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def ref(r: Reader, value: Mapping[str, Any], default_kind: str, default_ns: str) -> ObjKey | None:
    name = r.str_(value, "name")
    if not name:
        return None
    return (r.str_(value, "kind") or default_kind, r.str_(value, "namespace") or default_ns, name)


def redact_url(url: str) -> str:
    """Drop user:password@ so a credential typed into a URL never becomes a label."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return f"{scheme}://{host}{slash}{path}"


_REF_KEYS = ("name", "commit", "digest", "tag", "semver", "branch")  # Flux's precedence order


def _source_ref(r: Reader, value: Mapping[str, Any]) -> str:
    """What a Git or OCI source follows: ``branch:main``, ``tag:v1.2.0``, ``semver:>=1.0``."""
    for key in _REF_KEYS:
        text = r.str_(value, key)
        if text:
            return f"{key}:{text}"
    return ""


def _depends_on(o: ObjectView) -> tuple[ObjKey, ...]:
    refs: list[ObjKey] = []
    for item in o.r.list_(o.spec, "dependsOn"):
        if not isinstance(item, Mapping):
            o.r.note("bad_field_type")
            continue
        found = ref(o.r, item, o.kind, o.namespace)
        if found is not None:
            refs.append((o.kind, found[1], found[2]))  # dependsOn always names the same kind
    return tuple(refs)


# Sources ---------------------------------------------------------------------------------------


def _artifact(o: ObjectView, fields: Fields) -> None:
    """Every source kind: the current artifact's revision, size and time."""
    r = o.r
    artifact = r.map_(o.status, "artifact")
    revision = r.str_(artifact, "revision")
    fields["applied_revision"] = revision
    fields["offered_revision"] = revision
    fields["origin_revision"] = r.str_(r.map_(artifact, "metadata"), OCI_REVISION_ANNOTATION)
    fields["artifact_size"] = r.num_(artifact, "size")
    updated = r.time_(artifact, "lastUpdateTime")
    fields["artifact_updated"] = updated
    if fields["status"] == "ready":
        fields["last_success"] = newest(fields.get("last_success"), updated)


def _url_source(o: ObjectView, fields: Fields) -> None:
    """GitRepository, OCIRepository, HelmRepository: a URL and the ref it follows."""
    _artifact(o, fields)
    fields["url"] = redact_url(o.r.str_(o.spec, "url"))
    fields["ref"] = _source_ref(o.r, o.r.map_(o.spec, "ref"))


def _bucket(o: ObjectView, fields: Fields) -> None:
    _artifact(o, fields)
    fields["endpoint"] = redact_url(o.r.str_(o.spec, "endpoint"))
    fields["bucket_name"] = o.r.str_(o.spec, "bucketName")


def _helm_chart(o: ObjectView, fields: Fields) -> None:
    _artifact(o, fields)
    fields["chart_name"] = o.r.str_(o.spec, "chart")
    fields["chart_version"] = o.r.str_(o.spec, "version")
    source = ref(o.r, o.r.map_(o.spec, "sourceRef"), "HelmRepository", o.namespace)
    if source is not None:
        fields["source"] = source
        fields["upstream"] = (source,)


def _external_artifact(o: ObjectView, fields: Fields) -> None:
    _artifact(o, fields)
    source = ref(o.r, o.r.map_(o.spec, "sourceRef"), "ArtifactGenerator", o.namespace)
    if source is not None:
        fields["source"] = source


# Appliers --------------------------------------------------------------------------------------


def _kustomization(o: ObjectView, fields: Fields) -> None:
    r, status = o.r, o.status
    source = ref(r, r.map_(o.spec, "sourceRef"), "GitRepository", o.namespace)
    if source is not None:
        fields["source"] = source
        fields["upstream"] = (source,)
    fields["depends_on"] = _depends_on(o)
    fields["path"] = r.str_(o.spec, "path")
    applied = r.str_(status, "lastAppliedRevision")
    fields["applied_revision"] = applied
    fields["attempted_revision"] = r.str_(status, "lastAttemptedRevision")
    fields["origin_revision"] = r.str_(status, "lastAppliedOriginRevision")  # v1 only
    if "inventory" in status:
        fields["inventory"] = len(r.list_(r.map_(status, "inventory"), "entries"))
    history = [h for h in r.list_(status, "history") if isinstance(h, Mapping)]
    if not history:
        return  # before Flux 2.7 (and on v1beta2) nothing records each run: no last attempt
    # history[0] is the latest run (kustomize-controller upserts one entry per digest+status)
    fields["last_attempt"] = r.time_(history[0], "lastReconciled")
    for entry in history:
        if r.str_(entry, "lastReconciledStatus") == "ReconciliationSucceeded":
            fields["last_success"] = newest(
                fields.get("last_success"), r.time_(entry, "lastReconciled")
            )
        if applied and r.str_(r.map_(entry, "metadata"), "revision") == applied:
            first = r.time_(entry, "firstReconciled")
            if first is not None:
                fields["applied_at"] = min(first, fields.get("applied_at") or first)


def _helm_release(o: ObjectView, fields: Fields) -> None:
    r, spec, status = o.r, o.spec, o.status
    upstream: list[ObjKey] = []
    chart_ref = r.map_(spec, "chartRef")
    template = r.map_(r.map_(spec, "chart"), "spec")
    if chart_ref:
        found = ref(r, chart_ref, "OCIRepository", o.namespace)
        if found is not None:
            fields["source"] = found
            fields["chart_ref_name"] = found[2]
            upstream.append(found)
    if template:
        helm_chart = r.str_(status, "helmChart")
        if "/" in helm_chart:
            chart_ns, _, chart_name = helm_chart.partition("/")
            upstream.append(("HelmChart", chart_ns, chart_name))
        found = ref(r, r.map_(template, "sourceRef"), "HelmRepository", o.namespace)
        if found is not None:
            fields["source"] = found
            fields["chart_source_name"] = found[2]
            upstream.append(found)
        fields["chart_name"] = r.str_(template, "chart")
    fields["upstream"] = tuple(upstream)
    fields["depends_on"] = _depends_on(o)
    history = [h for h in r.list_(status, "history") if isinstance(h, Mapping)]
    applied = ""
    if history:
        latest = history[0]
        applied = r.str_(latest, "chartVersion")
        fields["chart_name"] = r.str_(latest, "chartName") or fields.get("chart_name", "")
        fields["chart_version"] = applied
        fields["chart_app_version"] = r.str_(latest, "appVersion")
        # lastDeployed is the last release, not the last run: a routine reconcile with nothing
        # to upgrade writes nothing, so it is a success time but never a last attempt.
        if r.str_(latest, "status") in ("deployed", "superseded"):
            deployed = r.time_(latest, "lastDeployed")
            fields["last_success"] = newest(fields.get("last_success"), deployed)
            fields["applied_at"] = deployed
    else:
        applied = r.str_(status, "lastAppliedRevision")  # v2beta1 still records it
    fields["applied_revision"] = applied
    fields["attempted_revision"] = r.str_(status, "lastAttemptedRevision")
    fields["failures"] = r.int_(status, "failures")
    fields["install_failures"] = r.int_(status, "installFailures")
    fields["upgrade_failures"] = r.int_(status, "upgradeFailures")
    fields["last_action"] = r.str_(status, "lastAttemptedReleaseAction")
    drifted = o.conditions.get("Drifted")
    if drifted is not None:
        fields["drifted"] = 1.0 if drifted.get("status") == "True" else 0.0
    if "inventory" in status:
        fields["inventory"] = len(r.list_(r.map_(status, "inventory"), "entries"))


# Image automation ------------------------------------------------------------------------------


def _image_repository(o: ObjectView, fields: Fields) -> None:
    r = o.r
    scan = r.map_(o.status, "lastScanResult")
    fields["image"] = r.str_(o.spec, "image")
    fields["tags"] = r.int_(scan, "tagCount")
    fields["last_scan"] = r.time_(scan, "scanTime")
    fields["last_attempt"] = fields["last_scan"]  # every scan writes it
    fields["applied_revision"] = r.str_(scan, "revision")
    if fields["status"] == "ready" and fields["last_scan"] is not None:
        fields["last_success"] = newest(fields.get("last_success"), fields["last_scan"])


def _image_policy(o: ObjectView, fields: Fields) -> None:
    r = o.r
    repository = ref(r, r.map_(o.spec, "imageRepositoryRef"), "ImageRepository", o.namespace)
    if repository is not None:
        fields["source"] = repository
        fields["upstream"] = (repository,)
    latest = r.map_(o.status, "latestRef")
    fields["latest_image"] = r.str_(latest, "name")
    fields["latest_tag"] = r.str_(latest, "tag")
    fields["applied_revision"] = fields["latest_tag"]


def _image_update_automation(o: ObjectView, fields: Fields) -> None:
    r, status = o.r, o.status
    source = ref(r, r.map_(o.spec, "sourceRef"), "GitRepository", o.namespace)
    if source is not None:
        fields["source"] = source
        fields["upstream"] = (source,)
    fields["applied_revision"] = r.str_(status, "lastPushCommit")
    fields["attempted_revision"] = r.str_(status, "observedSourceRevision")
    run = r.time_(status, "lastAutomationRunTime")  # every run writes it
    fields["last_attempt"] = run
    if fields["status"] == "ready" and run is not None:
        fields["last_success"] = newest(fields.get("last_success"), run)


# Notification and Flagger ----------------------------------------------------------------------


def _receiver(o: ObjectView, fields: Fields) -> None:
    fields["webhook_path"] = o.r.str_(o.status, "webhookPath")


def _nothing_more(o: ObjectView, fields: Fields) -> None:
    """Alert and Provider: identity, suspension and (v1beta2) conditions are all there is."""


CANARY_PHASES: dict[str, str] = {
    "Succeeded": "ready",
    "Initialized": "ready",
    "Failed": "failing",
    "Initializing": "progressing",
    "Waiting": "progressing",
    "Progressing": "progressing",
    "WaitingPromotion": "progressing",
    "Promoting": "progressing",
    "Finalising": "progressing",
    "Terminating": "unknown",
    "Terminated": "unknown",
    "": "unknown",
}


def _canary(o: ObjectView, fields: Fields) -> None:
    """Flagger writes a phase, not kstatus conditions: the status follows the phase."""
    r, status = o.r, o.status
    phase = r.str_(status, "phase")
    promoted = o.conditions.get("Promoted")
    fields.update(
        status="suspended" if o.suspended else CANARY_PHASES.get(phase, "unknown"),
        reason=(r.str_(promoted, "reason") if promoted else "") or phase,
        message=r.str_(promoted, "message") if promoted else "",
        since=r.time_(status, "lastTransitionTime"),
        ready_condition=promoted.get("status", "") if promoted is not None else "",
        phase=phase,
        weight=r.num_(status, "canaryWeight"),
        failed_checks=r.num_(status, "failedChecks"),
        iterations=r.num_(status, "iterations"),
        interval=r.duration_(r.map_(o.spec, "analysis"), "interval"),
    )


EXTRACTORS: dict[str, Extractor] = {
    "GitRepository": _url_source,
    "OCIRepository": _url_source,
    "HelmRepository": _url_source,
    "Bucket": _bucket,
    "HelmChart": _helm_chart,
    "ExternalArtifact": _external_artifact,
    "Kustomization": _kustomization,
    "HelmRelease": _helm_release,
    "ImageRepository": _image_repository,
    "ImagePolicy": _image_policy,
    "ImageUpdateAutomation": _image_update_automation,
    "Receiver": _receiver,
    "Alert": _nothing_more,
    "Provider": _nothing_more,
    "Canary": _canary,
}
"""One entry per kind in ``exporter.kinds.KINDS`` (a test checks it)."""
