"""The provider shape: a pure builder, a pure classifier and a thin ``send`` between them.

Every destination is one module under ``notifiers/providers/`` registered by name. Its builder
turns a ``Notification`` into the exact request(s) to send and its classifier turns an answer
into done / retry (optionally after ``Retry-After``) / permanent failure; ``send`` only moves
bytes between the two. The delivery loop owns retries, backoff, breakers and bookkeeping (as
Alertmanager's notifiers return "may I retry?"). ``conformance()`` exposes the builder and the
classifier with example options, so one test suite checks every provider, including ones added
later (tests/notifiers/test_provider_conformance.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from notifiers.configkit import ConfigError, str_
from notifiers.http import HttpClient, HttpResponse
from notifiers.model import Notification, Outcome, ThreadAnchor


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    """One request exactly as it goes on the wire; ``purpose`` names the API call."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    purpose: str = "post"


class ThreadStore(Protocol):
    """Durable thread anchors (the outbox): read before sending, written with the outcome."""

    async def thread_anchor(self, destination: str, incident: str) -> ThreadAnchor | None: ...


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What providers may use: the shared HTTP client, a console stream, the clock, anchors."""

    http: HttpClient
    console: TextIO
    clock: Callable[[], float]
    threads: ThreadStore | None = None


class Provider(Protocol):
    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class ResponseCase:
    """One row of a provider's own retry table: an answer and the outcome class it must get."""

    label: str
    status: int
    expect: str  # "ok" | "retry" | "fail"
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    after: float | None = None  # the Retry-After the outcome must carry, when it is a retry


@dataclass(frozen=True, slots=True)
class Conformance:
    """A provider's pure parts with example options, for the suite that runs over all of them.

    ``secrets`` are strings inside ``options`` that must never appear in an outcome, a log line
    or a metric; ``options_for(base_url)`` gives options with the same secrets pointed at a
    local server (the request path may carry a secret, as webhook URLs do). ``violations``
    lists every way a request breaks the target's documented limits (empty when it fits).
    Providers that speak no HTTP (the console) set ``http=False`` and skip the HTTP table.
    """

    options: Any
    secrets: tuple[str, ...]
    build: Callable[[Notification], Sequence[OutboundRequest]]
    classify: Callable[[HttpResponse, float], Outcome]
    violations: Callable[[Sequence[OutboundRequest]], list[str]]
    options_for: Callable[[str], Any]
    ok_response: HttpResponse = field(default_factory=lambda: HttpResponse(200, {}, b""))
    cases: tuple[ResponseCase, ...] = ()
    http: bool = True


class ProviderType(Protocol):
    """A registry entry: parses its options at config load and builds a ``Provider``."""

    name: str

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> Any: ...

    def create(self, destination: str, options: Any) -> Provider: ...

    def conformance(self) -> Conformance: ...

    def preview(self, options: Any, notification: Notification) -> Preview:
        """What ``send`` would send first for ``notification`` (``fluxwatch bridge preview``)."""
        ...


@dataclass(frozen=True, slots=True)
class Preview:
    requests: Sequence[OutboundRequest]
    secrets: tuple[str, ...]  # masked wherever they appear in the printed requests


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A response header by case-insensitive name."""
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


def url_template(raw: Mapping[str, Any], key: str, path: str) -> str:
    """An optional link template option (``dashboard_url``, ``runbook_url``); "" when unset."""
    value = str_(raw.get(key), f"{path}.{key}", default="")
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{path}.{key}", "expected an http:// or https:// URL template")
    return value


def mask_secrets(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret (longest first) by ``***``: for previews and error snippets."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
