"""The provider protocol: one async ``send`` over a ``Notification``, returning an ``Outcome``.

Providers build their request with pure functions and classify the answer; the delivery loop owns
retries, backoff, breakers and bookkeeping (as Alertmanager's notifiers return "may I retry?").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from notifiers.http import HttpClient
from notifiers.model import Notification, Outcome


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What providers may use: the shared HTTP client, a console stream and the clock."""

    http: HttpClient
    console: TextIO
    clock: Callable[[], float]


class Provider(Protocol):
    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome: ...


class ProviderType(Protocol):
    """A registry entry: parses its options at config load and builds a ``Provider``."""

    name: str

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> Any: ...

    def create(self, destination: str, options: Any) -> Provider: ...
