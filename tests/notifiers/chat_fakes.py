"""Local stand-ins for Slack (Web API and incoming webhooks) and a Teams Workflows endpoint.

They enforce what the real services enforce (notify-apis.md §1-2) and answer with their real
error shapes: Slack's ``200 {"ok": false, "error": ...}`` for API errors and ``429`` with
``Retry-After`` for throttling, plain-text codes for incoming webhooks; Teams' ``202`` for an
accepted card, ``400`` for a card the flow refuses (checked against the official Adaptive Cards
1.4 schema), ``413`` past the size limit, ``401`` for a wrong signature.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import jsonschema
from aiohttp import web

SLACK_LIMITS = {"blocks": 50, "section": 3000, "field": 2000, "header": 150, "text": 40_000}
TEAMS_MAX_BODY = 28 * 1024
_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "adaptive-card-1.4.json").read_text())
_CARD_VALIDATOR = jsonschema.Draft6Validator(_SCHEMA)


class LoopbackServer:
    """Start/stop on 127.0.0.1 with a free port; subclasses add their routes."""

    port = 0
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class Scripted:
    """A forced answer for the next call of ``method``: an HTTP status and a JSON or text body."""

    method: str
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _block_problem(blocks: Any) -> str | None:
    if not isinstance(blocks, list):
        return "blocks must be an array"
    if len(blocks) > SLACK_LIMITS["blocks"]:
        return "too many blocks"
    for block in blocks:
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > SLACK_LIMITS["header"]:
            return "header text too long"
        if kind == "section":
            if "text" in block and not 1 <= len(block["text"]["text"]) <= SLACK_LIMITS["section"]:
                return "section text length"
            for f in block.get("fields", []):
                if len(f["text"]) > SLACK_LIMITS["field"]:
                    return "field too long"
            if len(block.get("fields", [])) > 10:
                return "too many fields"
        if kind not in ("header", "section", "context", "actions", "divider"):
            return f"unknown block type {kind}"
    return None


class FakeSlack(LoopbackServer):
    """The Web API methods the bridge uses, plus incoming webhooks under ``/services/<secret>``.

    Channels are known by ID and name; the bot is a member of ``member_of`` only (public
    channels accept posts when ``chat_write_public``). ``revoked`` turns the token away with
    ``invalid_auth``. More than ``burst`` posts to one channel within a second get ``429``.
    """

    def __init__(self, token: str, *, webhook_secret: str = "T000/B000/XXXX") -> None:
        self.token = token
        self.webhook_secret = webhook_secret
        self.channels = {"C0FLUX": "flux-prod", "C0OTHER": "other"}
        self.member_of = {"C0FLUX", "C0OTHER"}
        self.revoked = False
        self.burst = 10
        self.messages: dict[tuple[str, str], SlackMessage] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook_posts: list[dict[str, Any]] = []
        self.script: list[Scripted] = []
        self.post_times: dict[str, list[float]] = {}  # the last second, per channel
        self.post_log: list[tuple[str, float]] = []
        self._ts = itertools.count(1)

    # ---- views for assertions ----

    def parents(self, channel: str = "C0FLUX") -> list[SlackMessage]:
        return [m for (c, _), m in self.messages.items() if c == channel and not m.thread_ts]

    def replies(self, parent: SlackMessage) -> list[SlackMessage]:
        return [m for m in self.messages.values() if m.thread_ts == parent.ts]

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{self.webhook_secret}"

    # ---- handlers ----

    def _channel_id(self, value: str) -> str | None:
        if value in self.channels:
            return value
        name = value.lstrip("#")
        return next((cid for cid, n in self.channels.items() if n == name), None)

    def _scripted(self, method: str) -> web.Response | None:
        for i, step in enumerate(self.script):
            if step.method == method:
                del self.script[i]
                body = step.body if isinstance(step.body, str) else json.dumps(step.body)
                return web.Response(
                    status=step.status,
                    headers=step.headers,
                    text=body,
                    content_type="application/json",
                )
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        try:
            args = json.loads(raw)
        except ValueError:
            return self._error("invalid_json")
        self.calls.append((method, args))
        forced = self._scripted(method)
        if forced is not None:
            return forced
        if request.headers.get("Authorization") != f"Bearer {self.token}" or self.revoked:
            return self._error("invalid_auth")
        if method == "chat.postMessage":
            return self._post_message(args)
        if method == "chat.update":
            return self._update(args)
        return self._error("unknown_method")

    @staticmethod
    def _error(code: str, status: int = 200) -> web.Response:
        return web.json_response({"ok": False, "error": code}, status=status)

    def _check_content(self, args: dict[str, Any]) -> str | None:
        text = args.get("text", "")
        if not text and not args.get("blocks"):
            return "no_text"
        if len(text) > SLACK_LIMITS["text"]:
            return "msg_too_long"
        if "blocks" in args and _block_problem(args["blocks"]) is not None:
            return "invalid_blocks"
        return None

    def _post_message(self, args: dict[str, Any]) -> web.Response:
        cid = self._channel_id(str(args.get("channel", "")))
        if cid is None:
            return self._error("channel_not_found")
        if cid not in self.member_of:
            return self._error("not_in_channel")
        problem = self._check_content(args)
        if problem:
            return self._error(problem)
        now = time.monotonic()
        recent = [t for t in self.post_times.get(cid, []) if now - t < 1.0]
        if len(recent) >= self.burst:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        self.post_times[cid] = [*recent, now]
        self.post_log.append((cid, now))
        thread_ts = args.get("thread_ts")
        if thread_ts is not None and (cid, thread_ts) not in self.messages:
            return self._error("thread_not_found")
        ts = f"1796000000.{next(self._ts):06d}"
        self.messages[(cid, ts)] = SlackMessage(
            cid, ts, args.get("text", ""), list(args.get("blocks", [])), thread_ts
        )
        return web.json_response({"ok": True, "channel": cid, "ts": ts, "message": {"ts": ts}})

    def _update(self, args: dict[str, Any]) -> web.Response:
        cid = str(args.get("channel", ""))
        if cid not in self.channels:  # chat.update wants the ID, never a name
            return self._error("channel_not_found")
        message = self.messages.get((cid, str(args.get("ts", ""))))
        if message is None:
            return self._error("message_not_found")
        problem = self._check_content(args)
        if problem:
            return self._error(problem)
        message.text = args.get("text", message.text)
        if "blocks" in args:
            message.blocks = list(args["blocks"])
        message.updates += 1
        return web.json_response({"ok": True, "channel": cid, "ts": message.ts})

    async def _webhook(self, request: web.Request) -> web.Response:
        if request.match_info["secret"] != self.webhook_secret:
            return web.Response(status=404, text="no_service")
        forced = self._scripted("webhook")
        if forced is not None:
            return forced
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if "channel" in body:
            return web.Response(status=400, text="invalid_payload")  # fixed channel
        problem = self._check_content(body)
        if problem:
            return web.Response(status=400, text="invalid_blocks")
        self.webhook_posts.append(body)
        return web.Response(text="ok")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/services/{secret:.+}", self._webhook)


class FakeTeams(LoopbackServer):
    """A Workflows trigger: checks the signature, the size, the shape and the card schema."""

    def __init__(self, *, sig: str = "c2VjcmV0LXNpZw", bare_card: bool = False) -> None:
        self.sig = sig
        self.bare_card = bare_card
        self.cards: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.script: list[tuple[int, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return (
            f"http://127.0.0.1:{self.port}/workflows/0f1e/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sig={self.sig}"
        )

    def _bad(self, status: int, code: str, message: str) -> web.Response:
        self.rejected.append(f"{code}: {message}")
        return web.json_response({"error": {"code": code, "message": message}}, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.query.get("sig") != self.sig:
            return self._bad(401, "DirectApiAuthorizationRequired", "bad signature")
        body = await request.read()
        if self.script:
            status, headers = self.script.pop(0)
            return web.Response(status=status, headers=headers)
        if len(body) > TEAMS_MAX_BODY:
            return self._bad(413, "MessageTooLarge", f"{len(body)} bytes")
        try:
            doc = json.loads(body)
        except ValueError:
            return self._bad(400, "InvalidRequestContent", "not JSON")
        if self.bare_card:
            card = doc
        else:
            if doc.get("type") != "message" or len(doc.get("attachments") or []) != 1:
                return self._bad(400, "InvalidRequestContent", "expected a message envelope")
            attachment = doc["attachments"][0]
            if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
                return self._bad(400, "InvalidRequestContent", "not an adaptive card")
            card = attachment.get("content")
        problems = [e.message for e in _CARD_VALIDATOR.iter_errors(card)]
        if problems or card.get("version") != "1.4":
            return self._bad(400, "InvalidRequestContent", "; ".join(problems)[:500])
        self.cards.append(card)
        return web.Response(status=202)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/workflows/{id}/triggers/manual/paths/invoke", self._handle)
