"""Intake: Flux events, Alertmanager webhooks and exporter transitions become ``Event``s.

Parsers are pure and raise ``IntakeError(reason, message)``; the aiohttp handlers add
authentication, size limits and the rule that a 2xx is sent only after the events are durably
stored. Unknown fields are kept in ``Event.raw``. Rejections are counted by reason and logged
with the reason only, never the body (it may carry tokens).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from notifiers.config import AlertmanagerIntakeConfig, FluxIntakeConfig
from notifiers.metrics import BridgeMetrics
from notifiers.model import Event, RootCauseDict

log = logging.getLogger("fluxwatch.bridge.intake")


class IntakeError(Exception):
    """A rejected payload: ``reason`` is a short metric label, ``message`` is for the sender."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def new_event_id() -> str:
    """Unique without a syscall per event: a random per-process prefix plus a counter.

    (``uuid4`` reads ``os.urandom`` each time, which cost ~40 µs here under load.)
    """
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


def parse_time(value: Any, default: float) -> float:
    if not isinstance(value, str) or not value:
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def _str_field(doc: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = doc.get(key)
    if value is None:
        if required:
            raise IntakeError("invalid_event", f"{where}{key} is required")
        return ""
    if not isinstance(value, str):
        raise IntakeError("invalid_event", f"{where}{key} must be a string")
    if required and not value:
        raise IntakeError("invalid_event", f"{where}{key} must not be empty")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise IntakeError("invalid_event", f"{where} must be an object of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            out[str(key)] = item
        elif isinstance(item, bool | int | float) or item is None:
            out[str(key)] = "" if item is None else json.dumps(item)
        else:
            raise IntakeError("invalid_event", f"{where}.{key} must be a string")
    return out


def decode_json(body: bytes) -> Any:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntakeError("malformed_json", f"malformed JSON: {exc}") from None
    # A lone ``\ud800``-style escape decodes to a string no UTF-8 column or outbound body can
    # hold: stored, it failed the whole group commit (a 503 for every request in the batch).
    # Only such an escape can produce one, so the walk runs only when the body has one.
    if b"\\ud" in body or b"\\uD" in body:
        try:
            json.dumps(doc, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise IntakeError(
                "malformed_json", "malformed JSON: a \\u escape is a lone UTF-16 surrogate"
            ) from None
    return doc


# ---- Flux notification-controller events ----

_SUCCESS_REASONS = frozenset(
    {
        "ReconciliationSucceeded",
        "Succeeded",
        "InstallSucceeded",
        "UpgradeSucceeded",
        "TestSucceeded",
        "RollbackSucceeded",
        "UninstallSucceeded",
        "ArtifactUpToDate",
        "NewArtifact",
        "ChartPullSucceeded",
        "ChartPackageSucceeded",
        "HealthCheckSucceeded",
    }
)
_FLUX_METADATA_KEYS = frozenset(
    {
        "revision",
        "originRevision",
        "checksum",
        "digest",
        "commit",
        "commit_status",
        "change_request",
        "app-version",
        "oci-digest",
        "summary",
    }
)


# Info events whose reason the exporter's status model calls failing (Ready=False while waiting
# for dependencies or retrying): the same change seen by both must get the same status, or it
# is announced twice.
_NOT_READY_REASONS = frozenset({"DependencyNotReady", "ProgressingWithRetry"})


def flux_status(severity: str, reason: str) -> str:
    if severity == "error" or reason in _NOT_READY_REASONS:
        return "failing"
    if reason in _SUCCESS_REASONS:
        return "ready"
    if reason == "Suspended":
        return "suspended"
    return "progressing"


def parse_flux_event(
    doc: Any,
    *,
    cluster_from_request: str,
    default_cluster: str,
    now: float,
    event_id: str,
    raw_body: bytes = b"",
) -> Event:
    """An event as notification-controller's generic providers POST it (flux-api.md §8)."""
    if not isinstance(doc, Mapping):
        raise IntakeError("invalid_event", "the event must be a JSON object")
    obj = doc.get("involvedObject")
    if not isinstance(obj, Mapping):
        raise IntakeError("invalid_event", "involvedObject is required and must be an object")
    kind = _str_field(obj, "kind", "involvedObject.", required=True)
    name = _str_field(obj, "name", "involvedObject.", required=True)
    namespace = _str_field(obj, "namespace", "involvedObject.")
    uid = _str_field(obj, "uid", "involvedObject.")
    severity = _str_field(doc, "severity", "") or "info"
    reason = _str_field(doc, "reason", "")
    message = _str_field(doc, "message", "")
    timestamp = doc.get("timestamp")
    metadata = _string_map(doc.get("metadata"), "metadata")
    # The provider docs still show group-prefixed keys (kustomize.toolkit.fluxcd.io/revision);
    # current controllers strip them. Accept both, the stripped key winning.
    for key in list(metadata):
        prefix, sep, short = key.rpartition("/")
        if sep and prefix.endswith("toolkit.fluxcd.io") and short in _FLUX_METADATA_KEYS:
            metadata.setdefault(short, metadata[key])
    cluster = cluster_from_request or metadata.get("cluster", "") or default_cluster
    # event.toolkit.fluxcd.io/<key> annotations arrive as metadata keys: owner routing reads them.
    annotations = {
        f"fluxwatch.io/{k}": metadata[k] for k in ("owner", "destinations") if metadata.get(k)
    }
    return Event(
        id=event_id,
        source="flux",
        type="event",
        cluster=cluster,
        kind=kind,
        namespace=namespace,
        name=name,
        uid=uid,
        status=flux_status(severity, reason),
        severity=severity,
        reason=reason,
        message=message,
        revision=metadata.get("revision", ""),
        tenant=metadata.get("tenant", ""),
        annotations=annotations,
        metadata=metadata,
        received_at=now,
        occurred_at=parse_time(timestamp, now),
        raw=doc,
        raw_body=raw_body,
    )


# ---- Alertmanager webhook v4 ----


def parse_alertmanager(doc: Any, *, default_cluster: str, now: float) -> list[Event]:
    """One event per alert; group fields (groupKey, receiver, ...) are kept in ``raw``."""
    if not isinstance(doc, Mapping):
        raise IntakeError("invalid_event", "the payload must be a JSON object")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise IntakeError("invalid_event", "alerts is required and must be a list")
    common = _string_map(doc.get("commonLabels"), "commonLabels")
    group = {k: v for k, v in doc.items() if k != "alerts"}
    events: list[Event] = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(alert, Mapping):
            raise IntakeError("invalid_event", f"{where} must be an object")
        labels = {**common, **_string_map(alert.get("labels"), f"{where}.labels")}
        annotations = _string_map(alert.get("annotations"), f"{where}.annotations")
        state = (
            _str_field(alert, "status", f"{where}.") or _str_field(doc, "status", "") or "firing"
        )
        if state not in ("firing", "resolved"):
            raise IntakeError("invalid_event", f"{where}.status must be firing or resolved")
        fingerprint = _str_field(alert, "fingerprint", f"{where}.")
        if not fingerprint:
            fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[
                :16
            ]
        alertname = labels.get("alertname", "")
        events.append(
            Event(
                id=new_event_id(),
                source="alertmanager",
                type="alert",
                cluster=labels.get("cluster", "") or default_cluster,
                kind=labels.get("kind", "") or labels.get("customresource_kind", "") or "Alert",
                namespace=labels.get("exported_namespace", "") or labels.get("namespace", ""),
                name=labels.get("name", "") or alertname,
                uid=fingerprint,
                status=state,
                severity=labels.get("severity", "") or "warning",
                reason=labels.get("reason", "") or alertname,
                message=annotations.get("summary", "") or annotations.get("description", ""),
                revision=labels.get("revision", ""),
                tenant=labels.get("tenant", ""),
                labels=labels,
                annotations={k: v for k, v in annotations.items() if k.startswith("fluxwatch.io/")},
                metadata=annotations,
                received_at=now,
                occurred_at=parse_time(
                    alert.get("endsAt") if state == "resolved" else alert.get("startsAt"), now
                ),
                raw={**group, "alert": dict(alert)},
            )
        )
    return events


# ---- exporter transitions (in-process) ----

_TRANSITION_STATUS = {
    "failing": "failing",
    "recovered": "ready",
    "stalled": "stalled",
    "revision_applied": "ready",
    "suspended": "suspended",
    "resumed": "resumed",
    "cluster_unreachable": "unreachable",
    "cluster_reachable": "reachable",
}


# The exporter's object statuses (catalogue STATUSES), which a transition's ``status`` carries.
_OBJECT_STATUSES = frozenset({"ready", "failing", "progressing", "stalled", "suspended", "unknown"})


def parse_transition(doc: Any, *, now: float, event_id: str) -> Event:
    """The exporter's ``Transition.as_dict()`` (exporter/transitions.py), parsed without import."""
    if not isinstance(doc, Mapping):
        raise IntakeError("invalid_event", "a transition must be a mapping")
    kind_of = _str_field(doc, "type", "", required=True)
    status = _TRANSITION_STATUS.get(kind_of)
    if status is None:
        raise IntakeError("invalid_event", f"unknown transition type {kind_of!r}")
    if kind_of == "revision_applied":
        # A new revision applied says nothing about health: a HelmRelease whose tests failed
        # applied it too. The notification reports the state the object is in.
        reported = _str_field(doc, "status", "")
        if reported in _OBJECT_STATUSES:
            status = reported
    cluster = _str_field(doc, "cluster", "", required=True)
    rc_raw = doc.get("root_cause")
    root: RootCauseDict | None = None
    if isinstance(rc_raw, Mapping):
        root = RootCauseDict(
            kind=str(rc_raw.get("kind", "")),
            namespace=str(rc_raw.get("namespace", "")),
            name=str(rc_raw.get("name", "")),
            reason=str(rc_raw.get("reason", "")),
        )
    elif rc_raw is not None:
        raise IntakeError("invalid_event", "root_cause must be a mapping or null")
    ts = doc.get("timestamp")
    occurred = float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else now
    latency = doc.get("latency_seconds")
    cluster_level = kind_of.startswith("cluster_")
    return Event(
        id=event_id,
        source="transition",
        type=kind_of,
        cluster=cluster,
        kind=_str_field(doc, "kind", "") or ("Cluster" if cluster_level else ""),
        namespace=_str_field(doc, "namespace", ""),
        name=_str_field(doc, "name", "") or (cluster if cluster_level else ""),
        uid=_str_field(doc, "uid", ""),
        status=status,
        previous_status=_str_field(doc, "previous_status", ""),
        severity="error" if status in ("failing", "stalled", "unreachable") else "info",
        reason=_str_field(doc, "reason", ""),
        message=_str_field(doc, "message", ""),
        revision=_str_field(doc, "revision", ""),
        previous_revision=_str_field(doc, "previous_revision", ""),
        tenant=_str_field(doc, "tenant", ""),
        labels=_string_map(doc.get("labels"), "labels"),
        annotations=_string_map(doc.get("annotations"), "annotations"),
        root_cause=root,
        latency_seconds=float(latency) if isinstance(latency, int | float) else None,
        received_at=now,
        occurred_at=occurred,
        raw=dict(doc),
    )


# ---- authentication (constant-time compares) ----


def verify_flux_signature(body: bytes, header: str | None, keys: Sequence[bytes]) -> bool:
    """``X-Signature: <algo>=<hex>`` over the exact body; any configured key may match."""
    if not header or "=" not in header:
        return False
    algo, _, given = header.partition("=")
    digest = {
        "sha224": hashlib.sha224,
        "sha256": hashlib.sha256,
        "sha384": hashlib.sha384,
        "sha512": hashlib.sha512,
    }.get(algo.strip().lower())
    if digest is None:
        return False
    given_b = given.strip().lower().encode()
    ok = False
    for key in keys:
        expected = hmac.new(key, body, digest).hexdigest().encode()
        ok |= hmac.compare_digest(expected, given_b)  # no early exit: timing does not leak the key
    return ok


def verify_alertmanager_auth(header: str | None, cfg: AlertmanagerIntakeConfig) -> bool:
    if cfg.bearer_token is None and cfg.basic_username is None:
        return True
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and cfg.bearer_token is not None:
        return hmac.compare_digest(value.strip().encode(), cfg.bearer_token.encode())
    if scheme == "basic" and cfg.basic_username is not None and cfg.basic_password is not None:
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{cfg.basic_username}:{cfg.basic_password}".encode()
        return hmac.compare_digest(decoded, expected)
    return False


# ---- aiohttp handlers ----


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, however many TCP segments or chunks it arrives in, up to ``limit``.

    ``content.read(n)`` returns what is buffered so far, not the whole body: a large Flux
    event arriving in two segments would be checked (and refused) half-read, and
    notification-controller does not retry a 4xx. So read until end of body, and stop with
    413 as soon as the limit is passed, whether or not a Content-Length was sent. Every intake
    endpoint reads its body here.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise IntakeError("too_large", f"body over {limit} bytes", 413)
    body = bytearray()
    while True:
        piece = await request.content.read(limit + 1 - len(body))
        if not piece:  # end of body
            return bytes(body)
        body += piece
        if len(body) > limit:
            raise IntakeError("too_large", f"body over {limit} bytes", 413)


Submit = Callable[[Sequence[Event]], Awaitable[None]]


class IntakeHandlers:
    """The HTTP endpoints. ``submit`` returns only once the events are durably stored."""

    def __init__(
        self,
        *,
        flux: FluxIntakeConfig,
        alertmanager: AlertmanagerIntakeConfig,
        max_body_bytes: int,
        metrics: BridgeMetrics,
        submit: Submit,
        clock: Callable[[], float],
    ) -> None:
        self.flux = flux
        self.alertmanager = alertmanager
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.submit = submit
        self.clock = clock
        self._received = {s: metrics.child(metrics.received, s) for s in ("flux", "alertmanager")}

    def reject(self, source: str, error: IntakeError, request: web.Request) -> web.Response:
        self.metrics.child(self.metrics.rejected, source, error.reason).inc()
        log.info("rejected %s payload from %s: %s", source, request.remote, error.reason)
        # 503: the outbox cannot store right now (its database is unreachable); senders that
        # honour Retry-After come back when the bridge has likely reconnected.
        headers = {"Retry-After": "1"} if error.status == 503 else None
        return web.json_response(
            {"error": error.reason, "message": error.message},
            status=error.status,
            headers=headers,
        )

    async def _read(self, request: web.Request) -> bytes:
        return await read_body(request, self.max_body_bytes)

    async def _store(
        self, source: str, events: Sequence[Event], request: web.Request
    ) -> web.Response:
        try:
            await self.submit(events)
        except IntakeError as exc:
            return self.reject(source, exc, request)
        self._received[source].inc(len(events))
        ids = '","'.join(e.id for e in events)  # ids are hex: no escaping needed
        return web.Response(
            body=f'{{"accepted":["{ids}"]}}'.encode() if events else b'{"accepted":[]}',
            status=202,
            content_type="application/json",
        )

    async def flux_event(self, request: web.Request) -> web.Response:
        try:
            body = await self._read(request)
            if self.flux.hmac_keys and not verify_flux_signature(
                body, request.headers.get("X-Signature"), self.flux.hmac_keys
            ):
                raise IntakeError("bad_signature", "missing or invalid X-Signature", 401)
            doc = decode_json(body)
            cluster = request.match_info.get("cluster", "")
            if not cluster and self.flux.cluster_header:
                cluster = request.headers.get(self.flux.cluster_header, "")
            event = parse_flux_event(
                doc,
                cluster_from_request=cluster,
                default_cluster=self.flux.default_cluster,
                now=self.clock(),
                event_id=new_event_id(),
                raw_body=body,
            )
        except IntakeError as exc:
            return self.reject("flux", exc, request)
        return await self._store("flux", [event], request)

    async def alertmanager_webhook(self, request: web.Request) -> web.Response:
        try:
            if not verify_alertmanager_auth(
                request.headers.get("Authorization"), self.alertmanager
            ):
                raise IntakeError("bad_token", "missing or invalid credentials", 401)
            body = await self._read(request)
            doc = decode_json(body)
            events = parse_alertmanager(
                doc, default_cluster=self.alertmanager.default_cluster, now=self.clock()
            )
        except IntakeError as exc:
            return self.reject("alertmanager", exc, request)
        return await self._store("alertmanager", events, request)
