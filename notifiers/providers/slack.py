"""Slack destination (``type: slack``): a bot token with threads, or an incoming webhook.

Bot token mode (``token_file``/``token_env`` and ``channel``) posts with ``chat.postMessage``
through slack-sdk's ``AsyncWebClient``. The first notification of an incident posts a parent;
later ones reply in its thread and edit the parent with ``chat.update`` to show the current
state (failing -> recovered, with the duration). The thread anchor (channel ID and ``ts``)
travels back with ``Ok`` and is stored by the outbox in the same transaction that marks the
notification delivered, so it survives ``kill -9``. Incoming-webhook mode (``webhook_url_file``
/ ``webhook_url_env``) posts the same blocks to a fixed channel: Slack returns no ``ts`` there,
so there are no threads and no updates.

``plan_slack`` (notification + stored anchor -> API calls, in ``slack_plan``) and
``classify_api`` / ``classify_webhook`` (answer -> done / retry / permanent, here) are pure;
``send`` only runs the plan through slack-sdk, and ``SlackType`` reads the destination's config.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from notifiers.configkit import ConfigError, bool_, check_keys, read_secret, str_
from notifiers.http import HttpResponse
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
from notifiers.providers.render import message_view
from notifiers.providers.slack_blocks import violations
from notifiers.providers.slack_plan import (
    DEFAULT_API_URL,
    SlackCall,
    SlackOptions,
    SlackPlan,
    as_requests,
    is_fleet_rollout,
    plan_slack,
)
from notifiers.retry import parse_retry_after

# slack-sdk logs request URLs at DEBUG (for webhooks the URL is the secret): keep it quiet.
_SDK_LOG = logging.getLogger("fluxwatch.bridge.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)

RETRY_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
# chat.update answers meaning the parent is gone or frozen: post a new parent instead.
PARENT_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


# ---- pure: what an answer means ----

_ERROR_CODE = re.compile(r"^[a-z0-9_.]{1,64}$")


def _error_code(value: Any) -> str:
    """Slack's error identifier, or "unknown": never free text that might echo a request."""
    return value if isinstance(value, str) and _ERROR_CODE.match(value) else "unknown"


def classify_api(response: HttpResponse, now: float) -> Outcome:
    """A Web API answer: errors arrive as ``200 {"ok": false, "error": ...}``, throttling as 429."""
    retry_after = parse_retry_after(header(response.headers, "Retry-After"), now)
    if response.status == 429:
        return Retry("Slack rate limit (HTTP 429)", after=retry_after, status_code=429)
    if 500 <= response.status < 600:
        return Retry(f"Slack HTTP {response.status}", status_code=response.status)
    if response.status != 200:
        return Fail(f"Slack HTTP {response.status}", status_code=response.status)
    try:
        data = json.loads(response.body)
    except ValueError:
        return Retry("Slack answered 200 without JSON (a proxy?)", status_code=200)
    if not isinstance(data, Mapping):
        return Retry("Slack answered 200 without a JSON object", status_code=200)
    if data.get("ok") is True:
        return Ok(f"ts={data.get('ts', '')}")
    error = _error_code(data.get("error"))
    if error in RETRY_ERRORS:
        return Retry(f"Slack error {error}", after=retry_after, status_code=200)
    return Fail(f"Slack error {error}", status_code=200)


def classify_webhook(response: HttpResponse, now: float) -> Outcome:
    """An incoming-webhook answer: ``ok`` in plain text, or an error code with a 4xx status."""
    retry_after = parse_retry_after(header(response.headers, "Retry-After"), now)
    code = _error_code(response.body.decode("utf-8", "replace").strip())
    if 200 <= response.status < 300:
        return Ok("ok")
    if response.status == 429:
        return Retry("Slack rate limit (HTTP 429)", after=retry_after, status_code=429)
    if 500 <= response.status < 600:
        return Retry(f"Slack HTTP {response.status}", status_code=response.status)
    return Fail(f"Slack webhook HTTP {response.status}: {code}", status_code=response.status)


# ---- I/O: run the plan through slack-sdk ----


class SlackProvider:
    def __init__(self, destination: str, options: SlackOptions) -> None:
        self.destination = destination
        self.options = options

    async def _call_api(self, call: SlackCall, seconds: float) -> HttpResponse:
        client = AsyncWebClient(
            token=self.options.token,
            base_url=self.options.api_url,
            timeout=max(1, math.ceil(seconds)),
            logger=_SDK_LOG,
            retry_handlers=[],  # the bridge's scheduler retries, honouring Retry-After
        )
        try:
            async with asyncio.timeout(seconds):
                resp = await client.api_call(call.method, json=dict(call.args))
            status, headers, data = resp.status_code, resp.headers, resp.data
        except SlackApiError as exc:
            status, headers, data = (
                exc.response.status_code,
                exc.response.headers,
                exc.response.data,
            )
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        return HttpResponse(status, dict(headers or {}), body)

    async def _call_webhook(self, call: SlackCall, seconds: float) -> HttpResponse:
        client = AsyncWebhookClient(
            self.options.webhook_url,
            timeout=max(1, math.ceil(seconds)),
            logger=_SDK_LOG,
            retry_handlers=[],
        )
        async with asyncio.timeout(seconds):
            resp = await client.send_dict(dict(call.args))
        return HttpResponse(resp.status_code, dict(resp.headers or {}), resp.body.encode())

    async def _run(
        self, call: SlackCall, seconds: float, ctx: ProviderContext
    ) -> tuple[Outcome, HttpResponse | None]:
        try:
            if call.method == "webhook":
                response = await self._call_webhook(call, seconds)
                return classify_webhook(response, ctx.clock()), response
            response = await self._call_api(call, seconds)
        except TimeoutError:
            return Retry(f"timeout after {seconds:g}s calling Slack {call.method}"), None
        except (aiohttp.ClientError, OSError) as exc:
            return Retry(f"{type(exc).__name__} calling Slack {call.method}"), None
        except (AttributeError, TypeError, ValueError):
            # slack-sdk cannot read an answer that is not JSON (a proxy's error page)
            return Retry(f"unreadable answer from Slack {call.method}"), None
        return classify_api(response, ctx.clock()), response

    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome:
        plan = await self._plan(notification, ctx)
        outcome = await self._execute(plan, timeout_seconds, ctx)
        if isinstance(outcome, _ParentGone):
            # The parent was deleted (or can no longer be edited): start a new thread, or for
            # a recovery post it on its own and close the old anchor.
            gone = plan.anchor
            plan = plan_slack(notification, self.options, None)
            outcome = await self._execute(plan, timeout_seconds, ctx)
            if isinstance(outcome, Ok) and outcome.anchor is None and gone is not None:
                outcome = Ok(outcome.detail, anchor=replace(gone, closed=True))
        assert not isinstance(outcome, _ParentGone)
        return outcome

    async def _plan(self, notification: Notification, ctx: ProviderContext) -> SlackPlan:
        first = plan_slack(notification, self.options, None)
        if ctx.threads is None or self.options.mode != "bot" or not self.options.threads:
            return first
        if is_fleet_rollout(notification):
            found = await ctx.threads.thread_anchor(self.destination, first.incident)
            return plan_slack(notification, self.options, None, found)
        view_incident = message_view(notification).incident
        anchor = await ctx.threads.thread_anchor(self.destination, view_incident)
        if anchor is not None and not anchor.closed:
            return plan_slack(notification, self.options, anchor)
        rollout = None
        if first.incident.startswith("rollout:"):
            rollout = await ctx.threads.thread_anchor(self.destination, first.incident)
        return plan_slack(notification, self.options, None, rollout)

    async def _execute(
        self, plan: SlackPlan, seconds: float, ctx: ProviderContext
    ) -> Outcome | _ParentGone:
        anchor = plan.anchor
        outcome: Outcome = Ok()
        for call in plan.calls:
            outcome, response = await self._run(call, seconds, ctx)
            if (
                call.role == "update"
                and isinstance(outcome, Fail)
                and response is not None
                and _error_of(response) in PARENT_GONE
            ):
                return _ParentGone()
            if not isinstance(outcome, Ok):
                return outcome
            if call.role == "parent" and anchor is not None and response is not None:
                data = json.loads(response.body)
                anchor = replace(
                    anchor,
                    channel=str(data.get("channel", "") or call.args.get("channel", "")),
                    ts=str(data.get("ts", "")),
                )
        detail = outcome.detail if isinstance(outcome, Ok) else ""
        if anchor is not None and anchor.ts:
            return Ok(detail, anchor=anchor)
        return Ok(detail)


@dataclass(frozen=True, slots=True)
class _ParentGone:
    pass


def _error_of(response: HttpResponse) -> str:
    try:
        data = json.loads(response.body)
    except ValueError:
        return ""
    return _error_code(data.get("error")) if isinstance(data, Mapping) else ""


# ---- configuration ----

_KEYS = (
    "token_file",
    "token_env",
    "channel",
    "webhook_url_file",
    "webhook_url_env",
    "api_url",
    "threads",
    "dashboard_url",
    "runbook_url",
)


class SlackType:
    name = "slack"
    # Slack allows about one message per second per channel: the bucket the dispatcher uses
    # when the destination sets no rate_limit of its own.
    default_rate_limit = (1.0, 3)

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> SlackOptions:
        for inline in ("token", "webhook_url", "url"):
            if inline in raw:
                raise ConfigError(
                    f"{path}.{inline}",
                    "secrets are not read from the file; use token_file/token_env or "
                    "webhook_url_file/webhook_url_env",
                )
        check_keys(raw, path, _KEYS)
        token = read_secret(raw, path, "token", required=False, base_dir=base)
        webhook = read_secret(raw, path, "webhook_url", required=False, base_dir=base)
        common = {
            "dashboard_url": url_template(raw, "dashboard_url", path),
            "runbook_url": url_template(raw, "runbook_url", path),
        }
        if token is not None and webhook is not None:
            raise ConfigError(path, "set a bot token or an incoming webhook URL, not both")
        if webhook is not None:
            if "channel" in raw:
                raise ConfigError(
                    f"{path}.channel", "an incoming webhook posts to its own fixed channel"
                )
            if not webhook.startswith(("https://", "http://")):
                raise ConfigError(f"{path}.webhook_url", "expected an https:// URL")
            return SlackOptions(mode="webhook", webhook_url=webhook, threads=False, **common)
        if token is None:
            raise ConfigError(
                path, "token_file or token_env (bot token) or webhook_url_file/_env is required"
            )
        channel = str_(raw.get("channel"), f"{path}.channel", nonempty=True)
        api_url = str_(raw.get("api_url"), f"{path}.api_url", default=DEFAULT_API_URL)
        if not api_url.startswith(("https://", "http://")):
            raise ConfigError(f"{path}.api_url", "expected an http:// or https:// URL")
        return SlackOptions(
            mode="bot",
            token=token,
            channel=channel,
            api_url=api_url.rstrip("/") + "/",
            threads=bool_(raw.get("threads"), f"{path}.threads", True),
            **common,
        )

    def create(self, destination: str, options: Any) -> Provider:
        assert isinstance(options, SlackOptions)
        return SlackProvider(destination, options)

    def preview(self, options: Any, notification: Notification) -> Preview:
        assert isinstance(options, SlackOptions)
        requests = as_requests(plan_slack(notification, options, None), options)
        return Preview(requests, tuple(s for s in (options.token, options.webhook_url) if s))

    def conformance(self) -> Conformance:
        token = "xoxb-1111-2222-fluxwatchTESTtoken"

        def options_for(base_url: str) -> SlackOptions:
            return SlackOptions(
                mode="bot",
                token=token,
                channel="C0FLUX",
                api_url=base_url.rstrip("/") + "/api/",
                dashboard_url="https://grafana.example.com/d/flux?var-cluster={cluster}",
            )

        options = options_for("https://slack.com")
        return Conformance(
            options=options,
            secrets=(token,),
            build=lambda n: as_requests(plan_slack(n, options, None), options),
            classify=classify_api,
            violations=lambda reqs: [p for r in reqs for p in violations(json.loads(r.body))],
            options_for=options_for,
            ok_response=HttpResponse(200, {}, b'{"ok": true, "channel": "C0FLUX", "ts": "1.1"}'),
            cases=SLACK_CASES,
        )


def _err(code: str) -> bytes:
    return json.dumps({"ok": False, "error": code}).encode()


SLACK_CASES: tuple[ResponseCase, ...] = (
    ResponseCase("ratelimited in the body", 200, "retry", _err("ratelimited")),
    ResponseCase("internal_error", 200, "retry", _err("internal_error")),
    ResponseCase("invalid_auth", 200, "fail", _err("invalid_auth")),
    ResponseCase("channel_not_found", 200, "fail", _err("channel_not_found")),
    ResponseCase("not_in_channel", 200, "fail", _err("not_in_channel")),
    ResponseCase("msg_too_long", 200, "fail", _err("msg_too_long")),
    ResponseCase("invalid_blocks", 200, "fail", _err("invalid_blocks")),
    ResponseCase("429 with Retry-After", 429, "retry", b"", {"Retry-After": "30"}, after=30.0),
    ResponseCase("200 without JSON", 200, "retry", b"<html>proxy</html>"),
    ResponseCase("ok", 200, "ok", b'{"ok": true, "ts": "1.2"}'),
)


def request_summary(requests: Sequence[OutboundRequest]) -> list[dict[str, Any]]:
    return [{"call": r.purpose, "body": json.loads(r.body)} for r in requests]
