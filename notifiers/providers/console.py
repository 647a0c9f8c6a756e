"""Console destination: prints each delivered notification readably (used by ``fluxwatch demo``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from notifiers.configkit import ConfigError, check_keys, str_
from notifiers.http import HttpResponse
from notifiers.model import Notification, Ok, Outcome
from notifiers.providers.base import (
    Conformance,
    OutboundRequest,
    Preview,
    Provider,
    ProviderContext,
)
from notifiers.providers.render import source_names

_BADGES = {
    "failing": "FAILING",
    "stalled": "STALLED",
    "unreachable": "UNREACHABLE",
    "firing": "FIRING",
    "ready": "OK",
    "reachable": "REACHABLE",
    "resolved": "RESOLVED",
    "suspended": "SUSPENDED",
    "progressing": "PROGRESSING",
}


def sources_tag(events: list[Mapping[str, Any]]) -> str:
    """``[Flux event]``, ``[exporter]``, ``[Alertmanager]`` or several, for the listed events."""
    names = source_names(events)
    return f" [{', '.join(names)}]" if names else ""


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    format: Literal["text", "json"] = "text"


def _short_revision(revision: str, commit: str) -> str:
    if commit and commit in revision:
        return revision.replace(commit, commit[:8])
    return revision


def render_text(notification: Notification) -> str:
    """Pure: a few readable lines per notification, stable for a given input."""
    events = list(notification.events)
    summary = notification.summary
    first: Mapping[str, Any] = events[0] if events else {}
    when = datetime.fromtimestamp(notification.created_at, tz=UTC).strftime("%H:%M:%S")
    badge = _BADGES.get(str(first.get("status", "")), str(first.get("status", "")).upper())
    rev = _short_revision(str(first.get("revision", "")), str(first.get("commit", "")))
    head = (
        f"[{when}] {notification.destination}: {badge} {first.get('kind')} "
        f"{first.get('namespace')}/{first.get('name')} on {first.get('cluster')}"
    )
    if first.get("type") == "revision_applied" or (badge == "OK" and rev):
        head += f" rev {rev}"
    if first.get("reason"):
        head += f" ({first.get('reason')})"
    head += sources_tag(events)
    lines = [head]
    if first.get("message"):
        lines.append(f"    {str(first['message'])[:300]}")
    root = summary.get("root_cause")
    if root:
        lines.append(
            f"    root cause: {root['kind']} {root['namespace']}/{root['name']} ({root['reason']})"
        )
    if summary["count"] > 1:
        clusters = summary["clusters"]
        shown = ", ".join(clusters[:5]) + (
            f" and {len(clusters) - 5} more" if len(clusters) > 5 else ""
        )
        lines.append(f"    {summary['count']} events grouped, clusters: {shown}")
        deps = summary["dependents"]
        if deps:
            lines.append(
                f"    {len(deps)} dependents: "
                + ", ".join(d.split("/", 1)[1] for d in deps[:8])
                + (" ..." if len(deps) > 8 else "")
            )
    return "\n".join(lines) + "\n"


class ConsoleProvider:
    def __init__(self, destination: str, options: ConsoleOptions) -> None:
        self.destination = destination
        self.options = options

    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome:
        if self.options.format == "json":
            doc = {
                "destination": notification.destination,
                "idempotency_key": notification.idempotency_key,
                "summary": notification.summary,
                "events": list(notification.events),
            }
            ctx.console.write(json.dumps(doc, sort_keys=True) + "\n")
        else:
            ctx.console.write(render_text(notification))
        ctx.console.flush()
        return Ok("printed")


class ConsoleType:
    name = "console"

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> ConsoleOptions:
        check_keys(raw, path, ("format",))
        fmt = str_(raw.get("format"), f"{path}.format", default="text")
        if fmt not in ("text", "json"):
            raise ConfigError(f"{path}.format", "expected text or json")
        return ConsoleOptions(format=fmt)  # type: ignore[arg-type]

    def create(self, destination: str, options: Any) -> Provider:
        assert isinstance(options, ConsoleOptions)
        return ConsoleProvider(destination, options)

    def preview(self, options: Any, notification: Notification) -> Preview:
        assert isinstance(options, ConsoleOptions)
        text = render_text(notification).encode()
        return Preview([OutboundRequest("console:", {}, text, "console")], ())

    def conformance(self) -> Conformance:
        options = ConsoleOptions()
        return Conformance(
            options=options,
            secrets=(),
            build=lambda n: [OutboundRequest("console:", {}, render_text(n).encode())],
            classify=lambda _r, _now: Ok("printed"),
            violations=lambda _requests: [],
            options_for=lambda _url: options,
            ok_response=HttpResponse(200, {}, b""),
            http=False,
        )
