"""Pure derivation: one raw Flux object -> the few fields the metrics need.

The store keeps a ``Derived`` per object and drops the raw object, so memory follows what is
exported, not what the API returns. Nothing here raises on bad input: every surprise (a missing
status, a condition status that is not True/False/Unknown, a string where a number belongs) is
reported in ``problems`` for the store to count and log once, and the field is left empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from exporter.kindfields import EXTRACTORS, ObjectView
from exporter.kinds import KINDS_BY_NAME
from exporter.reader import Reader, interned
from exporter.reader import parse_duration as parse_duration
from exporter.reader import parse_time as parse_time

Status = Literal["ready", "failing", "progressing", "stalled", "suspended", "unknown"]
ObjKey = tuple[str, str, str]  # (kind, namespace, name)

TENANT_LABEL = "toolkit.fluxcd.io/tenant"
SHARD_LABEL = "sharding.fluxcd.io/key"
ANNOTATION_PREFIX = "fluxwatch.io/"
MAX_MESSAGE = 4096  # longer condition messages are cut (and counted): they only feed transitions
MAX_KEPT_LABELS = 32  # object labels kept for transition events

KNOWN_CONDITION_TYPES = frozenset(
    {
        # generic (fluxcd/pkg apis/meta)
        "Ready",
        "Reconciling",
        "Stalled",
        "Healthy",
        # source-controller
        "ArtifactInStorage",
        "ArtifactOutdated",
        "SourceVerified",
        "FetchFailed",
        "BuildFailed",
        "StorageOperationFailed",
        "IncludeUnavailable",
        # helm-controller
        "Released",
        "TestSuccess",
        "Remediated",
        "Drifted",
        # Flagger
        "Promoted",
    }
)
"""Condition types of the Flux API baseline; others are counted (not logged): a newer Flux may
add types, which should show up in a metric rather than flood the log."""
QUIET_PROBLEMS = frozenset({"unknown_condition_type"})

_EMPTY: Mapping[str, str] = MappingProxyType({})  # shared by the many objects without any
# Distinct label sets seen, each kept once: objects of a fleet carry few different ones (the
# Kustomization that applied them, a tenant), so 50,000 objects share a handful of mappings
# instead of holding a dict each. Bounded: a fleet of unique label sets just stops sharing.
_LABEL_SETS: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
_MAX_LABEL_SETS = 4096


def _shared_labels(labels: dict[str, str]) -> Mapping[str, str]:
    if not labels:
        return _EMPTY
    key = tuple(labels.items())
    shared = _LABEL_SETS.get(key)
    if shared is None:
        shared = MappingProxyType(labels)
        if len(_LABEL_SETS) < _MAX_LABEL_SETS:
            _LABEL_SETS[key] = shared
    return shared


_CONDITION_STATUSES = frozenset({"True", "False", "Unknown"})
_PROGRESSING_REASONS = frozenset({"Progressing", "ProgressingWithRetry", "DependencyNotReady"})


@dataclass(frozen=True, slots=True)
class Derived:
    """What the exporter keeps of one object. Empty string / None means "not known"."""

    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = ""
    status: Status = "unknown"
    reason: str = ""
    message: str = ""
    since: float | None = None  # lastTransitionTime of the condition that decided the status
    suspended: bool = False
    ready_condition: str = ""  # the Ready condition's status: True|False|Unknown|"" (compat)
    applied_revision: str = ""
    attempted_revision: str = ""
    # the Git commit an OCI artifact was built from: a source's artifact annotation, an
    # applier's lastAppliedOriginRevision (free-form, e.g. main@sha1:<sha>); "" when unrecorded
    origin_revision: str = ""
    offered_revision: str = ""  # sources: the artifact revision dependents should apply
    applied_at: float | None = None  # when applied_revision was first applied, if recorded
    source: ObjKey | None = None  # sourceRef / chartRef / chart.spec.sourceRef, for the info series
    upstream: tuple[ObjKey, ...] = ()  # objects whose artifact this one consumes, nearest first
    depends_on: tuple[ObjKey, ...] = ()
    shard: str = ""
    tenant: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)  # fluxwatch.io/* only
    chart_name: str = ""
    chart_version: str = ""
    chart_app_version: str = ""
    chart_ref_name: str = ""
    chart_source_name: str = ""
    url: str = ""
    ref: str = ""  # the branch, tag, semver range or digest a source follows
    path: str = ""  # Kustomization spec.path
    endpoint: str = ""
    bucket_name: str = ""
    webhook_path: str = ""
    image: str = ""
    last_success: float | None = None
    last_attempt: float | None = None
    interval: float | None = None
    generation_lag: int | None = None
    inventory: int | None = None
    failures: int | None = None
    install_failures: int | None = None
    upgrade_failures: int | None = None
    last_action: str = ""
    drifted: float | None = None  # HelmRelease Drifted condition: 1 True, 0 False
    artifact_size: float | None = None
    artifact_updated: float | None = None
    latest_image: str = ""
    latest_tag: str = ""
    tags: int | None = None
    last_scan: float | None = None
    phase: str = ""
    weight: float | None = None
    failed_checks: float | None = None
    iterations: float | None = None

    def __post_init__(self) -> None:
        if self.key == ("", "", ""):  # built by hand rather than by derive()
            object.__setattr__(self, "key", (self.kind, self.namespace, self.name))

    key: ObjKey = ("", "", "")  # (kind, namespace, name), set by derive: looked up constantly


def _conditions(r: Reader, status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for item in r.list_(status, "conditions"):
        if not isinstance(item, Mapping):
            r.note("bad_condition")
            continue
        ctype = item.get("type")
        cstatus = item.get("status")
        if not isinstance(ctype, str) or not ctype:
            r.note("bad_condition")
            continue
        if not isinstance(cstatus, str) or cstatus not in _CONDITION_STATUSES:
            r.note("unknown_condition_status")
            continue
        if ctype not in KNOWN_CONDITION_TYPES:
            r.note("unknown_condition_type")
        found[ctype] = item
    return found


def _status_of(
    r: Reader, kind: str, conditions: Mapping[str, Mapping[str, Any]], suspended: bool
) -> tuple[Status, str, str, float | None]:
    """(status, reason, message, since) from the kstatus-style conditions Flux writes."""
    ready = conditions.get("Ready")
    stalled = conditions.get("Stalled")
    reconciling = conditions.get("Reconciling")
    source = ready if ready is not None else (stalled or reconciling)
    reason = r.str_(source, "reason") if source is not None else ""
    message = r.str_(source, "message") if source is not None else ""
    since = r.time_(source, "lastTransitionTime") if source is not None else None
    if suspended:
        return "suspended", reason or "Suspended", message, None
    if stalled is not None and stalled.get("status") == "True":
        return (
            "stalled",
            r.str_(stalled, "reason"),
            r.str_(stalled, "message"),
            r.time_(stalled, "lastTransitionTime"),
        )
    if ready is None:
        if reconciling is not None and reconciling.get("status") == "True":
            return "progressing", reason, message, since
        known = KINDS_BY_NAME.get(kind)
        if known is not None and not known.has_status:
            return "ready", "", "", None  # Alert/Provider v1beta3 have no status at all
        # A kind the exporter does not know (a newer Flux, a bug) is "unknown", never "ready":
        # claiming health for an object nobody understood would hide its failures from every
        # alert. Without a status at all it is also counted as missing_status.
        return "unknown", reason or "NoReadyCondition", message, since
    ready_status = ready.get("status")
    if ready_status == "True":
        return "ready", reason, message, since
    if ready_status == "False":
        return "failing", reason, message, since
    # Ready=Unknown: kstatus "in progress" while Reconciling=True or a progressing reason.
    if (reconciling is not None and reconciling.get("status") == "True") or (
        reason in _PROGRESSING_REASONS
    ):
        return "progressing", reason, message, since
    return "unknown", reason, message, since


def derive(kind: str, obj: Mapping[str, Any]) -> tuple[Derived, tuple[str, ...]]:
    """The derived fields of one object and the surprises met on the way (never raises).

    The fields every kind has come first; then the kind's entry in
    ``exporter.kindfields.EXTRACTORS`` adds (or, for a Canary, overrides) its own.
    """
    r = Reader()
    meta = r.map_(obj, "metadata")
    spec = r.map_(obj, "spec")
    raw_status = obj.get("status")
    if raw_status is None:
        known = KINDS_BY_NAME.get(kind)
        if known is None or known.has_status:
            r.note("missing_status")
        status: Mapping[str, Any] = {}
    else:
        status = r.map_(obj, "status")
    namespace = r.str_(meta, "namespace")
    name = r.str_(meta, "name")
    uid = r.str_(meta, "uid", intern=False)
    if not name:
        r.note("missing_name")
    if not uid:
        r.note("missing_uid")
        uid = f"{namespace}/{name}"
    raw_labels = r.map_(meta, "labels")
    # Label keys and values repeat on nearly every object of a fleet: one shared copy each.
    labels = {
        interned(k): interned(v)
        for k, v in list(raw_labels.items())[:MAX_KEPT_LABELS]
        if isinstance(v, str) and isinstance(k, str)
    }
    annotations = {
        k: v
        for k, v in r.map_(meta, "annotations").items()
        if k.startswith(ANNOTATION_PREFIX) and isinstance(v, str)
    }
    suspend_value = spec.get("suspend")
    if suspend_value is not None and not isinstance(suspend_value, bool):
        r.note("bad_field_type")
    suspended = suspend_value is True

    fields: dict[str, Any] = {
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "key": (kind, namespace, name),
        "uid": uid,
        "api_version": r.str_(obj, "apiVersion"),
        "suspended": suspended,
        "labels": _shared_labels(labels),
        "annotations": annotations or _EMPTY,
        "shard": labels.get(SHARD_LABEL, ""),
        "tenant": labels.get(TENANT_LABEL, ""),
    }
    generation = r.int_(meta, "generation")
    observed = r.int_(status, "observedGeneration")
    if generation is not None and observed is not None:
        fields["generation_lag"] = max(generation - observed, 0)

    conditions = _conditions(r, status)
    state, reason, message, since = _status_of(r, kind, conditions, suspended)
    fields.update(status=state, reason=reason, message=message, since=since)
    ready = conditions.get("Ready")
    if ready is not None:
        fields["ready_condition"] = ready.get("status", "")
        if ready.get("status") == "True":
            fields["last_success"] = r.time_(ready, "lastTransitionTime")
    fields["interval"] = r.duration_(spec, "interval")
    extractor = EXTRACTORS.get(kind)
    if extractor is not None:
        extractor(ObjectView(r, kind, namespace, spec, status, conditions, suspended), fields)
    if len(fields.get("message", "")) > MAX_MESSAGE:
        r.note("huge_message")
        fields["message"] = fields["message"][:MAX_MESSAGE]
    return Derived(**fields), tuple(r.problems)


def revision_matches(offered: str, applied: str) -> bool:
    """Whether ``applied`` is the revision ``offered`` by a source, across Flux's formats.

    A HelmRelease records ``6.6.1+0cc9a8446c95`` for an OCI chart whose source revision is
    ``6.6.1@sha256:0cc9a8446c95...``; a HelmChart built from values files offers ``6.0.3+2``.
    """
    if offered == applied:
        return True
    if not offered or not applied:
        return False
    o_version, _, o_digest = offered.partition("@")
    a_version, _, a_suffix = applied.partition("+")
    if o_version.partition("+")[0] != a_version:
        return False
    if o_digest and a_suffix:
        return o_digest.partition(":")[2].startswith(a_suffix)
    return True
