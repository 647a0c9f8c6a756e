"""``fluxwatch bridge preview``: exactly what a destination would be sent, secrets masked.

Pure: the configured destination's own builder renders the notification the events would
become, so a team can paste the Block Kit JSON into Slack's Block Kit Builder or the card into
the Adaptive Cards designer before going live. Slack threads are decided at send time from the
stored anchor; the preview shows the first message of an incident.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

from notifiers.config import BridgeConfig
from notifiers.http import redact_url
from notifiers.model import Event, Notification, idempotency_key
from notifiers.providers import PROVIDERS
from notifiers.providers.base import mask_secrets


def notification_for(destination: str, events: Sequence[Event], now: float) -> Notification:
    """The notification these events would become if they were grouped together."""
    ids = [e.id for e in events]
    return Notification(
        id=0,
        destination=destination,
        group_key="preview",
        idempotency_key=idempotency_key(destination, ids),
        created_at=now,
        events=[e.fields() for e in events],
        total_events=len(events),
        object_keys=frozenset(e.object_key for e in events),
        clusters=tuple(sorted({e.cluster for e in events})),
    )


def render_preview(
    config: BridgeConfig, destination: str, events: Sequence[Event], now: float
) -> str:
    dest = config.destinations[destination]
    notification = notification_for(destination, events, now)
    preview = PROVIDERS[dest.type].preview(dest.options, notification)
    secrets = preview.secrets
    lines = [f"# destination {destination} (type {dest.type}): {len(preview.requests)} request(s)"]
    for request in preview.requests:
        url = request.url
        if any(s and s in url for s in secrets):
            url = redact_url(url)
        lines.append(f"# {request.purpose}: POST {url}" if "://" in url else f"# {url}")
        for name in sorted(request.headers):
            lines.append(f"# {name}: {mask_secrets(request.headers[name], secrets)}")
        text = request.body.decode("utf-8", "replace")
        with contextlib.suppress(ValueError):  # JSON bodies pretty-printed, text as it is
            text = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
        lines.append(mask_secrets(text, secrets).rstrip("\n"))
    return "\n".join(lines) + "\n"
