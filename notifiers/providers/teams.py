"""Microsoft Teams destination (``type: teams``) through a Workflows (Power Automate) webhook.

The Office 365 connectors are retired; the "Post to a channel when a webhook request is
received" workflow takes a ``message`` whose one attachment is an Adaptive Card (version 1.4, as
Flux and Argo CD pin). Some flows want the bare card as the body instead: ``shape: card``. The
card carries what the Slack message does: a coloured header per status, a FactSet of the fields,
the Flux message, the grouped summary and ``Action.OpenUrl`` buttons for the commit, dashboard
and runbook; the whole body stays inside a 20 KB budget (Microsoft documents about 28 KB, and
users saw 413 from about 20 KB). The workflow URL carries its signature (``sig=``), so it is a
secret: read from ``url_file``/``url_env`` and never shown.

A ``202 Accepted`` arrives before the flow runs, so it means accepted, not shown. 429 and 5xx
are retried, other 4xx (400 for a card the flow refuses) are permanent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from notifiers.configkit import ConfigError, check_keys, read_secret, str_
from notifiers.http import HttpResponse, TransportError
from notifiers.model import Fail, Notification, Ok, Outcome, Retry
from notifiers.providers.base import (
    Conformance,
    OutboundRequest,
    Preview,
    Provider,
    ProviderContext,
    ResponseCase,
    header,
    url_template,
)
from notifiers.providers.render import MessageView, cut, message_view
from notifiers.retry import classify_status, parse_retry_after

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
BODY_BUDGET = 20_000  # bytes of UTF-8 we aim for
MAX_BODY = 28 * 1024  # what Microsoft documents as the message limit
MESSAGE_CHARS = 4_000
FACT_CHARS = 500
_TEXT_COLOUR = {"attention": "attention", "warning": "warning", "good": "good", "accent": "accent"}

Shape = Literal["message", "card"]


@dataclass(frozen=True, slots=True)
class TeamsOptions:
    url: str = field(repr=False)  # carries the workflow's SAS signature: a secret
    shape: Shape = "message"
    dashboard_url: str = ""
    runbook_url: str = ""


def _card(view: MessageView, message_chars: int, status_line: str = "") -> dict[str, Any]:
    colour = view.card_colour
    heading: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": cut(f"{view.label}: {view.title}", 300),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _TEXT_COLOUR.get(colour, "default"),
        },
        {
            "type": "TextBlock",
            "text": cut(view.where, 300),
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
        },
    ]
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": colour, "bleed": True, "items": heading},
        {
            "type": "FactSet",
            "facts": [
                {"title": name, "value": cut(value, FACT_CHARS)} for name, value in view.facts
            ],
        },
    ]
    for line, subtle in ((view.group_line, False), (view.dependents_line, True)):
        if line:
            body.append({"type": "TextBlock", "text": cut(line, 2_000), "wrap": True})
            if subtle:
                body[-1]["isSubtle"] = True
    if view.message.strip() and message_chars > 0:
        body.append(
            {
                "type": "TextBlock",
                "text": cut(view.message, message_chars),
                "wrap": True,
                "fontType": "Monospace",
                "size": "Small",
            }
        )
    if status_line:
        body.append({"type": "TextBlock", "text": status_line, "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "fallbackText": cut(view.headline, 1_000),
        "body": body,
    }
    if view.links:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": link.label, "url": link.url} for link in view.links
        ]
    return card


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _wrap(card: Mapping[str, Any], shape: Shape) -> Any:
    if shape == "card":
        return card
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def build_teams_body(notification: Notification, options: TeamsOptions) -> bytes:
    """Pure: the exact bytes to POST, inside ``BODY_BUDGET`` (the message is cut first)."""
    view = message_view(
        notification, dashboard_url=options.dashboard_url, runbook_url=options.runbook_url
    )
    chars = MESSAGE_CHARS
    while True:
        body = _encode(_wrap(_card(view, chars), options.shape))
        if len(body) <= BODY_BUDGET or chars == 0:
            return body
        chars = chars // 2 if chars > 200 else 0


def build_teams_request(notification: Notification, options: TeamsOptions) -> OutboundRequest:
    return OutboundRequest(
        options.url,
        {"Content-Type": "application/json; charset=utf-8"},
        build_teams_body(notification, options),
        "teams",
    )


_CODE = re.compile(r"^[A-Za-z0-9_.]{1,64}$")


def classify_teams(response: HttpResponse, now: float) -> Outcome:
    """202 accepted; 429/5xx retried (Retry-After obeyed); other 4xx permanent.

    Only the error *code* of a Power Automate error body is kept: its message may quote the
    request, whose URL carries the signature.
    """
    outcome = classify_status(
        response.status, parse_retry_after(header(response.headers, "Retry-After"), now)
    )
    if isinstance(outcome, Ok):
        return Ok(f"accepted (HTTP {response.status})")
    if isinstance(outcome, Fail):
        code = ""
        try:
            data = json.loads(response.body)
            found = data.get("error", {}).get("code", "") if isinstance(data, dict) else ""
            code = found if isinstance(found, str) and _CODE.match(found) else ""
        except (ValueError, AttributeError):
            pass
        reason = f"Teams workflow HTTP {response.status}" + (f": {code}" if code else "")
        return Fail(reason, status_code=response.status)
    assert isinstance(outcome, Retry)
    return Retry(f"Teams workflow {outcome.reason}", outcome.after, outcome.status_code)


def card_violations(requests: Sequence[OutboundRequest]) -> list[str]:
    problems: list[str] = []
    for i, request in enumerate(requests):
        if len(request.body) > MAX_BODY:
            problems.append(f"request {i}: {len(request.body)} bytes > {MAX_BODY}")
        doc = json.loads(request.body)
        card = doc if doc.get("type") == "AdaptiveCard" else doc["attachments"][0]["content"]
        if card.get("version") != "1.4":
            problems.append(f"request {i}: card version {card.get('version')!r}")
        for action in card.get("actions", []):
            if action.get("type") != "Action.OpenUrl":
                problems.append(f"request {i}: action {action.get('type')} is not supported")
    return problems


class TeamsProvider:
    def __init__(self, destination: str, options: TeamsOptions) -> None:
        self.destination = destination
        self.options = options

    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome:
        request = build_teams_request(notification, self.options)
        try:
            response = await ctx.http.post(
                request.url, request.body, request.headers, timeout_seconds
            )
        except TransportError as exc:
            return Retry(str(exc))
        return classify_teams(response, ctx.clock())


class TeamsType:
    name = "teams"

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> TeamsOptions:
        if "url" in raw:
            raise ConfigError(
                f"{path}.url",
                "the workflow URL carries its signature: use url_file or url_env",
            )
        check_keys(raw, path, ("url_file", "url_env", "shape", "dashboard_url", "runbook_url"))
        url = read_secret(raw, path, "url", required=True, base_dir=base)
        assert url is not None
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"{path}.url", "expected an https:// workflow URL")
        host = urlsplit(url).hostname or ""
        if host.endswith("webhook.office.com") or host == "outlook.office.com":
            raise ConfigError(
                f"{path}.url",
                "Office 365 connector URLs are retired; create a Workflows webhook instead",
            )
        shape = str_(raw.get("shape"), f"{path}.shape", default="message")
        if shape not in ("message", "card"):
            raise ConfigError(f"{path}.shape", "expected message or card")
        return TeamsOptions(
            url=url,
            shape=shape,  # type: ignore[arg-type]
            dashboard_url=url_template(raw, "dashboard_url", path),
            runbook_url=url_template(raw, "runbook_url", path),
        )

    def create(self, destination: str, options: Any) -> Provider:
        assert isinstance(options, TeamsOptions)
        return TeamsProvider(destination, options)

    def preview(self, options: Any, notification: Notification) -> Preview:
        assert isinstance(options, TeamsOptions)
        return Preview([build_teams_request(notification, options)], (options.url,))

    def conformance(self) -> Conformance:
        path = "/workflows/0f1e2d3c/triggers/manual/paths/invoke"
        sig = "sig=Zm9vYmFyYmF6cXV4c2VjcmV0c2lnbmF0dXJl"

        def options_for(base_url: str) -> TeamsOptions:
            return TeamsOptions(
                url=f"{base_url.rstrip('/')}{path}?api-version=1&{sig}",
                dashboard_url="https://grafana.example.com/d/flux?var-cluster={cluster}",
            )

        options = options_for("https://prod-07.westeurope.logic.azure.com")
        return Conformance(
            options=options,
            secrets=(sig,),
            build=lambda n: [build_teams_request(n, options)],
            classify=classify_teams,
            violations=card_violations,
            options_for=options_for,
            ok_response=HttpResponse(202, {}, b""),
            cases=(
                ResponseCase("202 accepted", 202, "ok"),
                ResponseCase(
                    "400 with a Power Automate error",
                    400,
                    "fail",
                    b'{"error":{"code":"InvalidRequestContent","message":"..."}}',
                ),
                ResponseCase("413 too large", 413, "fail"),
                ResponseCase("429 Retry-After", 429, "retry", b"", {"Retry-After": "9"}, 9.0),
            ),
        )
