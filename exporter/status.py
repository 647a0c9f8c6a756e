"""Pure derivation: one raw Flux object -> the few fields the metrics need.

The store keeps a ``Derived`` per object and drops the raw object, so memory follows what is
exported, not what the API returns. Nothing here raises on bad input: every surprise (a missing
status, a condition status that is not True/False/Unknown, a string where a number belongs) is
reported in ``problems`` for the store to count and log once, and the field is left empty.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from exporter.kinds import KINDS_BY_NAME, SOURCE_KINDS

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

_INTERN_MAX = 256


def _intern(value: str) -> str:
    return sys.intern(value) if len(value) <= _INTERN_MAX else value


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
_CANARY_PHASES: dict[str, Status] = {
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


class _Reader:
    """Typed access to decoded JSON that records surprises instead of raising."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def map_(self, parent: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
        if parent is None:
            return {}
        value = parent.get(key)
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return value
        self.note("bad_field_type")
        return {}

    def list_(self, parent: Mapping[str, Any], key: str) -> Sequence[Any]:
        value = parent.get(key)
        if value is None:
            return ()
        if isinstance(value, list):
            return value
        self.note("bad_field_type")
        return ()

    def str_(self, parent: Mapping[str, Any], key: str, intern: bool = True) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            # Names, revisions and reasons repeat across clusters (one commit rolls out to all
            # of them): interning keeps one copy in the store instead of one per object. Values
            # that never repeat (uids) or are parsed and dropped (timestamps) are not interned:
            # each would only add an entry to the interpreter's interned table, which never
            # shrinks (2 MiB per 5,000 objects, measured).
            return sys.intern(value) if intern and len(value) <= _INTERN_MAX else value
        self.note("bad_field_type")
        return ""

    def num_(self, parent: Mapping[str, Any], key: str) -> float | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.note("bad_field_type")
            return None
        return float(value)

    def int_(self, parent: Mapping[str, Any], key: str) -> int | None:
        value = self.num_(parent, key)
        if value is None:
            return None
        if not math.isfinite(value):
            self.note("bad_field_type")
            return None
        return int(value)

    def time_(self, parent: Mapping[str, Any], key: str) -> float | None:
        text = self.str_(parent, key, intern=False)
        if not text:
            return None
        parsed = parse_time(text)
        if parsed is None:
            self.note("bad_timestamp")
        return parsed

    def duration_(self, parent: Mapping[str, Any], key: str) -> float | None:
        text = self.str_(parent, key, intern=False)
        if not text:
            return None
        parsed = parse_duration(text)
        if parsed is None:
            self.note("bad_duration")
        return parsed


_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> float | None:
    """RFC 3339 (as Kubernetes writes it, also with nanoseconds) to unix seconds."""
    candidate = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip(), count=1)
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # Kubernetes always writes a zone; a naive time is a malformed one
    return parsed.timestamp()


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """A Go ``time.Duration`` string (``5m0s``, ``1h``, ``2.5s``) to seconds."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0 if text == "0" else None
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _conditions(r: _Reader, status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
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


def _ref(r: _Reader, ref: Mapping[str, Any], default_kind: str, default_ns: str) -> ObjKey | None:
    name = r.str_(ref, "name")
    if not name:
        return None
    return (r.str_(ref, "kind") or default_kind, r.str_(ref, "namespace") or default_ns, name)


def _redact_url(url: str) -> str:
    """Drop user:password@ so a credential typed into a URL never becomes a label."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return f"{scheme}://{host}{slash}{path}"


def _status_of(
    r: _Reader, kind: str, conditions: Mapping[str, Mapping[str, Any]], suspended: bool
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
        if not KINDS_BY_NAME.get(kind, KINDS_BY_NAME["Alert"]).has_status:
            return "ready", "", "", None  # Alert/Provider v1beta3 have no status at all
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
    """The derived fields of one object and the surprises met on the way (never raises)."""
    r = _Reader()
    meta = r.map_(obj, "metadata")
    spec = r.map_(obj, "spec")
    raw_status = obj.get("status")
    if raw_status is None:
        if KINDS_BY_NAME.get(kind) is None or KINDS_BY_NAME[kind].has_status:
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
        _intern(k): _intern(v)
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
    if kind == "Canary":
        phase = r.str_(status, "phase")
        state: Status = _CANARY_PHASES.get(phase, "unknown")
        promoted = conditions.get("Promoted")
        reason = (r.str_(promoted, "reason") if promoted else "") or phase
        fields.update(
            status="suspended" if suspended else state,
            reason=reason,
            message=r.str_(promoted, "message") if promoted else "",
            since=r.time_(status, "lastTransitionTime"),
            phase=phase,
            weight=r.num_(status, "canaryWeight"),
            failed_checks=r.num_(status, "failedChecks"),
            iterations=r.num_(status, "iterations"),
            interval=r.duration_(r.map_(spec, "analysis"), "interval"),
        )
        if promoted is not None:
            fields["ready_condition"] = promoted.get("status", "")
    else:
        state, reason, message, since = _status_of(r, kind, conditions, suspended)
        fields.update(status=state, reason=reason, message=message, since=since)
        ready = conditions.get("Ready")
        if ready is not None:
            fields["ready_condition"] = ready.get("status", "")
        fields["interval"] = r.duration_(spec, "interval")
    if len(fields.get("message", "")) > MAX_MESSAGE:
        r.note("huge_message")
        fields["message"] = fields["message"][:MAX_MESSAGE]

    # Last attempt: the newest condition transition or handled reconcile request; kind code
    # below refines it where the status records every run (Kustomization history).
    attempt_times = [r.time_(c, "lastTransitionTime") for c in conditions.values()]
    attempt_times.append(r.time_(status, "lastHandledReconcileAt"))
    known_attempts = [t for t in attempt_times if t is not None]
    if known_attempts:
        fields["last_attempt"] = max(known_attempts)
    ready_cond = conditions.get("Ready")
    if ready_cond is not None and ready_cond.get("status") == "True":
        fields["last_success"] = r.time_(ready_cond, "lastTransitionTime")

    artifact = r.map_(status, "artifact")
    if kind in SOURCE_KINDS:
        _source_fields(r, kind, namespace, spec, status, artifact, fields)
    elif kind == "Kustomization":
        _kustomization_fields(r, namespace, spec, status, fields)
    elif kind == "HelmRelease":
        _helmrelease_fields(r, namespace, spec, status, fields, conditions)
    elif kind == "ImageRepository":
        scan = r.map_(status, "lastScanResult")
        fields["image"] = r.str_(spec, "image")
        fields["tags"] = r.int_(scan, "tagCount")
        fields["last_scan"] = r.time_(scan, "scanTime")
        fields["applied_revision"] = r.str_(scan, "revision")
        if fields["status"] == "ready" and fields["last_scan"] is not None:
            fields["last_success"] = _newest(fields.get("last_success"), fields["last_scan"])
    elif kind == "ImagePolicy":
        ref = _ref(r, r.map_(spec, "imageRepositoryRef"), "ImageRepository", namespace)
        if ref is not None:
            fields["source"] = ref
            fields["upstream"] = (ref,)
        latest = r.map_(status, "latestRef")
        fields["latest_image"] = r.str_(latest, "name")
        fields["latest_tag"] = r.str_(latest, "tag")
        fields["applied_revision"] = fields["latest_tag"]
    elif kind == "ImageUpdateAutomation":
        ref = _ref(r, r.map_(spec, "sourceRef"), "GitRepository", namespace)
        if ref is not None:
            fields["source"] = ref
            fields["upstream"] = (ref,)
        fields["applied_revision"] = r.str_(status, "lastPushCommit")
        fields["attempted_revision"] = r.str_(status, "observedSourceRevision")
        run = r.time_(status, "lastAutomationRunTime")
        fields["last_attempt"] = _newest(fields.get("last_attempt"), run)
        if fields["status"] == "ready" and run is not None:
            fields["last_success"] = _newest(fields.get("last_success"), run)
    elif kind == "Receiver":
        fields["webhook_path"] = r.str_(status, "webhookPath")
    return Derived(**fields), tuple(r.problems)


def _newest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _source_fields(
    r: _Reader,
    kind: str,
    namespace: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    artifact: Mapping[str, Any],
    fields: dict[str, Any],
) -> None:
    revision = r.str_(artifact, "revision")
    fields["applied_revision"] = revision
    fields["offered_revision"] = revision
    fields["artifact_size"] = r.num_(artifact, "size")
    updated = r.time_(artifact, "lastUpdateTime")
    fields["artifact_updated"] = updated
    if fields["status"] == "ready":
        fields["last_success"] = _newest(fields.get("last_success"), updated)
    if kind == "Bucket":
        fields["endpoint"] = _redact_url(r.str_(spec, "endpoint"))
        fields["bucket_name"] = r.str_(spec, "bucketName")
    elif kind == "HelmChart":
        fields["chart_name"] = r.str_(spec, "chart")
        fields["chart_version"] = r.str_(spec, "version")
        ref = _ref(r, r.map_(spec, "sourceRef"), "HelmRepository", namespace)
        if ref is not None:
            fields["source"] = ref
            fields["upstream"] = (ref,)
    elif kind == "ExternalArtifact":
        ref = _ref(r, r.map_(spec, "sourceRef"), "ArtifactGenerator", namespace)
        if ref is not None:
            fields["source"] = ref
    else:
        fields["url"] = _redact_url(r.str_(spec, "url"))
        fields["ref"] = _source_ref(r, r.map_(spec, "ref"))


_REF_KEYS = ("name", "commit", "digest", "tag", "semver", "branch")  # Flux's precedence order


def _source_ref(r: _Reader, ref: Mapping[str, Any]) -> str:
    """What a Git or OCI source follows: ``branch:main``, ``tag:v1.2.0``, ``semver:>=1.0``."""
    for key in _REF_KEYS:
        value = r.str_(ref, key)
        if value:
            return f"{key}:{value}"
    return ""


def _depends_on(r: _Reader, kind: str, namespace: str, spec: Mapping[str, Any]) -> list[ObjKey]:
    refs: list[ObjKey] = []
    for item in r.list_(spec, "dependsOn"):
        if not isinstance(item, Mapping):
            r.note("bad_field_type")
            continue
        ref = _ref(r, item, kind, namespace)
        if ref is not None:
            refs.append((kind, ref[1], ref[2]))  # dependsOn always names the same kind
    return refs


def _kustomization_fields(
    r: _Reader,
    namespace: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    fields: dict[str, Any],
) -> None:
    source = _ref(r, r.map_(spec, "sourceRef"), "GitRepository", namespace)
    if source is not None:
        fields["source"] = source
        fields["upstream"] = (source,)
    fields["depends_on"] = tuple(_depends_on(r, "Kustomization", namespace, spec))
    fields["path"] = r.str_(spec, "path")
    applied = r.str_(status, "lastAppliedRevision")
    fields["applied_revision"] = applied
    fields["attempted_revision"] = r.str_(status, "lastAttemptedRevision")
    entries = r.list_(r.map_(status, "inventory"), "entries")
    if "inventory" in status:
        fields["inventory"] = len(entries)
    history = [h for h in r.list_(status, "history") if isinstance(h, Mapping)]
    if history:
        # history[0] is the latest run (kustomize-controller upserts one entry per digest+status)
        fields["last_attempt"] = _newest(
            fields.get("last_attempt"), r.time_(history[0], "lastReconciled")
        )
        for entry in history:
            if r.str_(entry, "lastReconciledStatus") == "ReconciliationSucceeded":
                fields["last_success"] = _newest(
                    fields.get("last_success"), r.time_(entry, "lastReconciled")
                )
            if applied and r.str_(r.map_(entry, "metadata"), "revision") == applied:
                first = r.time_(entry, "firstReconciled")
                if first is not None:
                    fields["applied_at"] = min(first, fields.get("applied_at") or first)


def _helmrelease_fields(
    r: _Reader,
    namespace: str,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    fields: dict[str, Any],
    conditions: Mapping[str, Mapping[str, Any]],
) -> None:
    upstream: list[ObjKey] = []
    chart_ref = r.map_(spec, "chartRef")
    template = r.map_(r.map_(spec, "chart"), "spec")
    if chart_ref:
        ref = _ref(r, chart_ref, "OCIRepository", namespace)
        if ref is not None:
            fields["source"] = ref
            fields["chart_ref_name"] = ref[2]
            upstream.append(ref)
    if template:
        helm_chart = r.str_(status, "helmChart")
        if "/" in helm_chart:
            chart_ns, _, chart_name = helm_chart.partition("/")
            upstream.append(("HelmChart", chart_ns, chart_name))
        ref = _ref(r, r.map_(template, "sourceRef"), "HelmRepository", namespace)
        if ref is not None:
            fields["source"] = ref
            fields["chart_source_name"] = ref[2]
            upstream.append(ref)
        fields["chart_name"] = r.str_(template, "chart")
    fields["upstream"] = tuple(upstream)
    fields["depends_on"] = tuple(_depends_on(r, "HelmRelease", namespace, spec))
    history = [h for h in r.list_(status, "history") if isinstance(h, Mapping)]
    applied = ""
    if history:
        latest = history[0]
        applied = r.str_(latest, "chartVersion")
        fields["chart_name"] = r.str_(latest, "chartName") or fields.get("chart_name", "")
        fields["chart_version"] = applied
        fields["chart_app_version"] = r.str_(latest, "appVersion")
        deployed = r.time_(latest, "lastDeployed")
        fields["last_attempt"] = _newest(fields.get("last_attempt"), deployed)
        if r.str_(latest, "status") in ("deployed", "superseded"):
            fields["last_success"] = _newest(fields.get("last_success"), deployed)
            fields["applied_at"] = deployed
    else:
        applied = r.str_(status, "lastAppliedRevision")  # v2beta1 still records it
    fields["applied_revision"] = applied
    fields["attempted_revision"] = r.str_(status, "lastAttemptedRevision")
    fields["failures"] = r.int_(status, "failures")
    fields["install_failures"] = r.int_(status, "installFailures")
    fields["upgrade_failures"] = r.int_(status, "upgradeFailures")
    fields["last_action"] = r.str_(status, "lastAttemptedReleaseAction")
    drifted = conditions.get("Drifted")
    if drifted is not None:
        fields["drifted"] = 1.0 if drifted.get("status") == "True" else 0.0
    if "inventory" in status:
        fields["inventory"] = len(r.list_(r.map_(status, "inventory"), "entries"))


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
