"""What the Slack destination sends: a notification and its stored thread anchor -> API calls.

Pure: ``plan_slack`` decides between a new parent, a reply in the incident's thread with an
edit of the parent (failing -> recovered, with the duration), a fleet rollout's single parent
edited in place, or one plain message (incoming webhook, threads off); ``as_requests`` shows
the plan as the HTTP requests slack-sdk sends, for previews and the conformance suite. The
Block Kit content itself comes from ``slack_blocks``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from notifiers.model import Notification, ThreadAnchor
from notifiers.providers.base import OutboundRequest
from notifiers.providers.render import (
    CLOSING_KINDS,
    OPENING_KINDS,
    MessageView,
    human_duration,
    message_view,
    rollout_key,
)
from notifiers.providers.slack_blocks import build_blocks, fallback_text

DEFAULT_API_URL = "https://slack.com/api/"


@dataclass(frozen=True, slots=True)
class SlackOptions:
    mode: Literal["bot", "webhook"]
    token: str = field(default="", repr=False)  # secret: never printed
    channel: str = ""
    webhook_url: str = field(default="", repr=False)  # the URL is the secret
    api_url: str = DEFAULT_API_URL
    threads: bool = True
    dashboard_url: str = ""
    runbook_url: str = ""


@dataclass(frozen=True, slots=True)
class SlackCall:
    method: str  # chat.postMessage | chat.update | webhook
    args: Mapping[str, Any]
    role: Literal["parent", "reply", "update", "single"]


@dataclass(frozen=True, slots=True)
class SlackPlan:
    calls: tuple[SlackCall, ...]
    incident: str  # the anchor key the result is stored under ("" when nothing is kept)
    anchor: ThreadAnchor | None  # the anchor after success (ts filled in from the parent post)


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _event_time(notification: Notification) -> float:
    first = notification.events[0] if notification.events else {}
    at = first.get("occurred_at")
    return float(at) if isinstance(at, int | float) and at > 0 else notification.created_at


def _message_args(view: MessageView, status_line: str) -> dict[str, Any]:
    return {
        "text": fallback_text(view, status_line),
        "blocks": build_blocks(view, status_line=status_line),
    }


def _post(options: SlackOptions, body: dict[str, Any], role: str, **extra: Any) -> SlackCall:
    args = {
        "channel": options.channel,
        **body,
        "unfurl_links": False,
        "unfurl_media": False,
        **extra,
    }
    return SlackCall("chat.postMessage", args, role)  # type: ignore[arg-type]


def _state(anchor: ThreadAnchor) -> dict[str, Any]:
    try:
        found = json.loads(anchor.state)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _names(clusters: Sequence[str], shown: int = 10) -> str:
    if len(clusters) <= shown:
        return ", ".join(clusters)
    return ", ".join(clusters[:shown]) + f", ... and {len(clusters) - shown} more"


def plan_slack(
    notification: Notification,
    options: SlackOptions,
    anchor: ThreadAnchor | None,
    rollout_anchor: ThreadAnchor | None = None,
) -> SlackPlan:
    """The calls for one notification given the incident's stored thread anchor (if any).

    ``anchor`` is the incident's open anchor; ``rollout_anchor`` the thread of the same fleet
    rollout (same object and revision) when no incident is open.
    """
    view = message_view(
        notification, dashboard_url=options.dashboard_url, runbook_url=options.runbook_url
    )
    at = _event_time(notification)
    view_clusters = list(notification.summary["clusters"])
    if options.mode == "webhook":
        return SlackPlan((SlackCall("webhook", _message_args(view, ""), "single"),), "", None)
    if not options.threads:
        return SlackPlan((_post(options, _message_args(view, ""), "single"),), "", None)
    if is_fleet_rollout(notification):
        return _plan_fleet(notification, options, view, at, rollout_anchor)
    if anchor is not None and not anchor.closed:
        closes = view.kind in CLOSING_KINDS or view.kind in ("rollout", "ready")
        if closes:
            status_line = f"Recovered after {human_duration(at - anchor.opened_at)}"
            if view.kind in ("rollout", "ready"):
                view = message_view(
                    notification,
                    dashboard_url=options.dashboard_url,
                    runbook_url=options.runbook_url,
                    as_kind="recovered",
                )
        else:
            status_line = (
                f"{view.label} since {_stamp(anchor.opened_at)} "
                f"({human_duration(at - anchor.opened_at)})"
            )
        parent_view = view
        update = SlackCall(
            "chat.update",
            {"channel": anchor.channel, "ts": anchor.ts, **_message_args(parent_view, status_line)},
            "update",
        )
        reply = _post(
            replace(options, channel=anchor.channel),
            _message_args(view, status_line if closes else ""),
            "reply",
            thread_ts=anchor.ts,
        )
        state = json.dumps({"kind": parent_view.kind}, sort_keys=True)
        return SlackPlan(
            (update, reply), anchor.incident, replace(anchor, closed=closes, state=state)
        )
    fleet_parent = rollout_anchor is not None and bool(_state(rollout_anchor).get("fleet"))
    if view.kind == "rollout" and rollout_anchor is not None and fleet_parent:
        # The parent shows the fleet state (below): a cluster's news only replies.
        reply = _post(
            replace(options, channel=rollout_anchor.channel),
            _message_args(view, ""),
            "reply",
            thread_ts=rollout_anchor.ts,
        )
        return SlackPlan((reply,), rollout_anchor.incident, rollout_anchor)
    if view.kind == "rollout" and rollout_anchor is not None:
        # A fleet rollout: each cluster's news replies in the thread and the parent counts them.
        clusters = sorted(set(_state(rollout_anchor).get("clusters", [])) | set(view_clusters))
        status_line = f"Rolled out on {len(clusters)} clusters so far: {_names(clusters)}"
        update = SlackCall(
            "chat.update",
            {
                "channel": rollout_anchor.channel,
                "ts": rollout_anchor.ts,
                **_message_args(replace(view, where=f"{len(clusters)} clusters"), status_line),
            },
            "update",
        )
        reply = _post(
            replace(options, channel=rollout_anchor.channel),
            _message_args(view, ""),
            "reply",
            thread_ts=rollout_anchor.ts,
        )
        state = json.dumps({"kind": "rollout", "clusters": clusters}, sort_keys=True)
        return SlackPlan(
            (update, reply), rollout_anchor.incident, replace(rollout_anchor, state=state)
        )
    if view.kind in OPENING_KINDS or view.kind == "rollout":
        status_line = f"{view.label} since {_stamp(at)}" if view.kind in OPENING_KINDS else ""
        parent = _post(options, _message_args(view, status_line), "parent")
        incident = view.incident if view.kind in OPENING_KINDS else rollout_key(notification)
        new = ThreadAnchor(
            destination=notification.destination,
            incident=incident,
            channel="",
            ts="",
            opened_at=at,
            state=json.dumps({"kind": view.kind, "clusters": view_clusters}, sort_keys=True),
            # a rollout's thread is never "open": failures of the object start their own
            closed=view.kind == "rollout",
        )
        return SlackPlan((parent,), incident, new)
    return SlackPlan((_post(options, _message_args(view, ""), "single"),), "", None)


def is_fleet_rollout(notification: Notification) -> bool:
    first = notification.events[0] if notification.events else {}
    return first.get("type") == "fleet_rollout"


def _plan_fleet(
    notification: Notification,
    options: SlackOptions,
    view: MessageView,
    at: float,
    rollout_anchor: ThreadAnchor | None,
) -> SlackPlan:
    """The bridge's fleet rollout state: one parent per rollout, edited in place as it moves.

    Each notification carries the whole state ("applied on 212/500 clusters, 3 failing"), so
    the parent is replaced, never replied to: one message per rollout, not one per cluster.
    """
    body = _message_args(view, "")
    state = json.dumps({"clusters": [], "fleet": True, "kind": "rollout"}, sort_keys=True)
    if rollout_anchor is not None:
        update = SlackCall(
            "chat.update",
            {"channel": rollout_anchor.channel, "ts": rollout_anchor.ts, **body},
            "update",
        )
        return SlackPlan((update,), rollout_anchor.incident, replace(rollout_anchor, state=state))
    key = rollout_key(notification)
    new = ThreadAnchor(
        destination=notification.destination,
        incident=key,
        channel="",
        ts="",
        opened_at=at,
        state=state,
        closed=True,  # like a per-cluster rollout thread: failures start their own
    )
    return SlackPlan((_post(options, body, "parent"),), key, new)


def as_requests(plan: SlackPlan, options: SlackOptions) -> list[OutboundRequest]:
    """The plan as the HTTP requests slack-sdk sends (for previews and the conformance suite)."""
    out: list[OutboundRequest] = []
    for call in plan.calls:
        body = json.dumps(call.args, sort_keys=True, ensure_ascii=False).encode()
        if call.method == "webhook":
            out.append(
                OutboundRequest(
                    options.webhook_url, {"Content-Type": "application/json"}, body, "webhook"
                )
            )
        else:
            out.append(
                OutboundRequest(
                    options.api_url.rstrip("/") + "/" + call.method,
                    {
                        "Authorization": f"Bearer {options.token}",
                        "Content-Type": "application/json;charset=utf-8",
                    },
                    body,
                    call.method,
                )
            )
    return out
