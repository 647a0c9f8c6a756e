"""Generic webhook for pipelines: JSON POST signed per Standard Webhooks, optionally CloudEvents.

Headers ``webhook-id`` (the notification's idempotency key, equal on every retry),
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>``.
CloudEvents 1.0 structured mode puts the whole event in the body
(``application/cloudevents+json``); binary mode moves the attributes to ``ce-*`` headers. The
CloudEvent ``id`` equals ``webhook-id``, so either key deduplicates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from notifiers.configkit import ConfigError, check_keys, mapping, read_secret, str_
from notifiers.http import HttpResponse, TransportError, truncate_utf8
from notifiers.model import Fail, Notification, Outcome, Retry
from notifiers.providers.base import (
    Conformance,
    OutboundRequest,
    Preview,
    Provider,
    ProviderContext,
    ResponseCase,
    mask_secrets,
)
from notifiers.retry import classify_status, parse_retry_after

CloudEventsMode = Literal["none", "structured", "binary"]
SOURCE = "fluxwatch/bridge"
EVENT_FIELDS = (
    "cluster",
    "kind",
    "namespace",
    "name",
    "status",
    "previous_status",
    "severity",
    "reason",
    "message",
    "revision",
    "previous_revision",
    "commit",
    "tenant",
    "type",
    "source",
    "id",
    "root_cause",
    "latency_seconds",
    "occurred_at",
    "metadata",
    "labels",
    "annotations",
)


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    url: str = field(repr=False)  # may embed a token: never printed
    secret: bytes | None = field(default=None, repr=False)
    cloudevents: CloudEventsMode = "none"
    headers: Mapping[str, str] = field(default_factory=dict)


def _decode_secret(text: str, path: str) -> bytes:
    if not text.startswith("whsec_"):
        raise ConfigError(path, "a Standard Webhooks secret starts with whsec_")
    try:
        key = base64.b64decode(text[len("whsec_") :] + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ConfigError(path, "the secret after whsec_ is not base64") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(path, "the secret must decode to 24-64 bytes")
    return key


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_webhook_data(notification: Notification) -> dict[str, Any]:
    """The ``data`` document: the first event's fields at top level, every event listed."""
    events = [{k: e.get(k) for k in EVENT_FIELDS if k in e} for e in notification.events]
    first = events[0] if events else {}
    data: dict[str, Any] = {k: first.get(k) for k in EVENT_FIELDS if k in first}
    data.update(
        {
            "idempotency_key": notification.idempotency_key,
            "destination": notification.destination,
            "group_key": notification.group_key,
            "summary": notification.summary,
            "events": events,
        }
    )
    return data


def _event_type(notification: Notification) -> str:
    first = notification.events[0] if notification.events else {}
    return f"io.fluxwatch.{first.get('type', 'event')}.{first.get('status', 'unknown')}"


def _subject(notification: Notification) -> str:
    first = notification.events[0] if notification.events else {}
    return "/".join(str(first.get(k, "")) for k in ("cluster", "kind", "namespace", "name"))


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def build_webhook_request(
    notification: Notification, options: WebhookOptions, now: float
) -> OutboundRequest:
    """Pure: the exact bytes and headers to POST. The body is stable across retries."""
    data = build_webhook_data(notification)
    ts = notification.created_at
    headers: dict[str, str] = {**options.headers, "Idempotency-Key": notification.idempotency_key}
    if options.cloudevents == "structured":
        body = dumps(
            {
                "specversion": "1.0",
                "id": notification.idempotency_key,
                "source": SOURCE,
                "type": _event_type(notification),
                "subject": _subject(notification),
                "time": iso(ts),
                "datacontenttype": "application/json",
                "data": data,
            }
        )
        headers["Content-Type"] = "application/cloudevents+json; charset=UTF-8"
    elif options.cloudevents == "binary":
        body = dumps(data)
        headers.update(
            {
                "Content-Type": "application/json",
                "ce-specversion": "1.0",
                "ce-id": notification.idempotency_key,
                "ce-source": SOURCE,
                "ce-type": _event_type(notification),
                "ce-subject": _subject(notification),
                "ce-time": iso(ts),
            }
        )
    else:
        body = dumps({"type": _event_type(notification), "timestamp": iso(ts), "data": data})
        headers["Content-Type"] = "application/json"
    if options.secret is not None:
        stamp = int(now)
        headers["webhook-id"] = notification.idempotency_key
        headers["webhook-timestamp"] = str(stamp)
        headers["webhook-signature"] = sign(
            options.secret, notification.idempotency_key, stamp, body
        )
    return OutboundRequest(url=options.url, headers=headers, body=body)


def interpret_webhook_response(status: int, headers: Mapping[str, str], now: float) -> Outcome:
    retry_after = parse_retry_after(
        next((v for k, v in headers.items() if k.lower() == "retry-after"), None), now
    )
    return classify_status(status, retry_after)


class WebhookProvider:
    def __init__(self, destination: str, options: WebhookOptions) -> None:
        self.destination = destination
        self.options = options

    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome:
        now = ctx.clock()
        request = build_webhook_request(notification, self.options, now)
        try:
            response = await ctx.http.post(
                request.url, request.body, request.headers, timeout_seconds
            )
        except TransportError as exc:
            return Retry(str(exc))
        return _classify_response(response, ctx.clock(), _secrets(self.options))


class WebhookType:
    name = "webhook"

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> WebhookOptions:
        if "secret" in raw:
            raise ConfigError(
                f"{path}.secret",
                "secrets are not read from the file; use secret_file or secret_env",
            )
        check_keys(
            raw,
            path,
            ("url", "url_file", "url_env", "secret_file", "secret_env", "cloudevents", "headers"),
        )
        if "url" in raw:
            url = str_(raw["url"], f"{path}.url", nonempty=True)
        else:
            found = read_secret(raw, path, "url", required=False, base_dir=base)
            if found is None:
                raise ConfigError(f"{path}.url", "required (or url_file / url_env)")
            url = found
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}.url", "expected an http:// or https:// URL")
        secret_text = read_secret(raw, path, "secret", required=False, base_dir=base)
        secret = _decode_secret(secret_text, f"{path}.secret") if secret_text is not None else None
        mode = str_(raw.get("cloudevents"), f"{path}.cloudevents", default="none")
        if mode not in ("none", "structured", "binary"):
            raise ConfigError(f"{path}.cloudevents", "expected none, structured or binary")
        headers = mapping(raw.get("headers"), f"{path}.headers")
        for key, value in headers.items():
            if not isinstance(value, str):
                raise ConfigError(f"{path}.headers.{key}", "expected a string")
            if key.lower() in ("authorization", "webhook-signature"):
                raise ConfigError(
                    f"{path}.headers.{key}", "secret headers are not read from the file"
                )
        return WebhookOptions(url=url, secret=secret, cloudevents=mode, headers=dict(headers))  # type: ignore[arg-type]

    def create(self, destination: str, options: Any) -> Provider:
        assert isinstance(options, WebhookOptions)
        return WebhookProvider(destination, options)

    def preview(self, options: Any, notification: Notification) -> Preview:
        assert isinstance(options, WebhookOptions)
        request = build_webhook_request(notification, options, notification.created_at)
        secrets = _secrets(options) + tuple(
            v for k, v in request.headers.items() if k.lower() == "webhook-signature"
        )
        return Preview([request], secrets)

    def conformance(self) -> Conformance:
        secret_path = "hook/t0k3n-in-the-path"
        secret_text = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        key = _decode_secret(secret_text, "secret")

        def options_for(base_url: str) -> WebhookOptions:
            return WebhookOptions(url=f"{base_url.rstrip('/')}/{secret_path}", secret=key)

        options = options_for("https://hooks.example.com")
        return Conformance(
            options=options,
            secrets=(secret_path, secret_text, base64.b64encode(key).decode()),
            build=lambda n: [build_webhook_request(n, options, n.created_at)],
            classify=lambda r, now: _classify_response(r, now, _secrets(options)),
            violations=lambda _requests: [],  # no documented size limit for generic receivers
            options_for=options_for,
            cases=(
                ResponseCase("410 gone", 410, "fail"),
                ResponseCase("408 timeout", 408, "retry"),
                ResponseCase("302 not followed", 302, "fail"),
            ),
        )


def _secrets(options: WebhookOptions) -> tuple[str, ...]:
    """The URL's path and query may be the secret (Slack, Teams and many CI hooks)."""
    parts = urlsplit(options.url)
    found = [options.url, parts.path, parts.query]
    if options.secret is not None:
        found.append(base64.b64encode(options.secret).decode())
    return tuple(s for s in found if len(s) > 1)


def _classify_response(response: HttpResponse, now: float, secrets: tuple[str, ...]) -> Outcome:
    """Pure; an error body is kept as a short snippet with anything secret masked."""
    outcome = interpret_webhook_response(response.status, response.headers, now)
    if isinstance(outcome, Fail):
        text = mask_secrets(response.body.decode("utf-8", "replace"), secrets)
        snippet = truncate_utf8(text, 200)
        return Fail(f"{outcome.reason}: {snippet}" if snippet else outcome.reason, response.status)
    return outcome
