"""Slack Block Kit layout of a ``MessageView``, kept inside Slack's limits before sending.

Built with slack-sdk's Block Kit models (their validators raise when a limit is exceeded), after
cutting every text to its limit with a visible marker: 50 blocks, 3,000 characters per section
text, 2,000 per field, 150 per header, 40,000 for the fallback ``text``. Everything taken from
Flux is escaped for mrkdwn (``&``, ``<``, ``>``), so a message containing ``<!channel>`` or
``<@U123>`` pings no one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from notifiers.providers.render import TRUNCATION_MARKER, MessageView, cut

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_TEXT = 40_000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MESSAGE_TEXT_BUDGET = 2900  # the Flux message's share of one section, code fences included

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str) -> str:
    """Slack mrkdwn control characters; nothing a sender wrote can become a mention or a link."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def escape_cut(text: str, limit: int) -> str:
    """Escape, then cut to ``limit`` characters without splitting an entity, with a marker."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for index, ch in enumerate(text):
        piece = _ESCAPES.get(ch, ch)
        marker = TRUNCATION_MARKER.format(n=len(text) - index)
        if used + len(piece) + len(marker) > limit:
            return "".join(out) + TRUNCATION_MARKER.format(n=len(text) - index)
        out.append(piece)
        used += len(piece)
    return "".join(out)


def _link(url: str, label: str) -> str:
    if "|" in url or ">" in url or "<" in url or len(url) > MAX_URL:
        return escape(label)
    return f"<{url}|{escape(label)}>"


def _code(text: str, limit: int) -> str:
    # Code fences keep Flux's own characters (asterisks, underscores) from turning into markup.
    body = escape_cut(text.replace("```", "ˋˋˋ"), limit - 6)
    return f"```{body}```"


def build_blocks(view: MessageView, *, status_line: str = "") -> list[dict[str, Any]]:
    """The message's blocks, each inside its limits; at most ``MAX_BLOCKS``."""
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(
                text=cut(f"{view.emoji} {view.label}: {view.title}", MAX_HEADER), emoji=True
            )
        )
    ]
    fields = [
        MarkdownTextObject(text=escape_cut(f"*{name}*\n{value}", MAX_FIELD_TEXT))
        for name, value in view.facts[:MAX_FIELDS]
    ]
    if view.commit_url and view.revision:
        for i, (name, _value) in enumerate(view.facts[:MAX_FIELDS]):
            if name == "Revision":
                rev = _link(view.commit_url, view.revision.replace(view.commit, view.commit[:12]))
                fields[i] = MarkdownTextObject(text=f"*Revision*\n{rev}"[:MAX_FIELD_TEXT])
    blocks.append(SectionBlock(fields=fields))
    summary_lines = [escape(line) for line in (view.group_line, view.dependents_line) if line]
    if summary_lines:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=_cut_escaped("\n".join(summary_lines), MAX_SECTION_TEXT)
                )
            )
        )
    if view.message.strip():
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=_code(view.message, MESSAGE_TEXT_BUDGET)))
        )
    context = [escape_cut(status_line, MAX_SECTION_TEXT)] if status_line else []
    context.append(escape_cut(f"fluxwatch · {view.where}", MAX_SECTION_TEXT))
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=t) for t in context[:MAX_CONTEXT_ELEMENTS]])
    )
    buttons = [
        ButtonElement(
            text=PlainTextObject(text=cut(link.label, MAX_BUTTON_TEXT)),
            url=link.url,
            action_id=f"fluxwatch-link-{i}",
        )
        for i, link in enumerate(view.links)
        if len(link.url) <= MAX_URL
    ]
    if buttons:
        blocks.append(ActionsBlock(elements=buttons[:25]))
    dicts = [b.to_dict() for b in blocks]  # raises SlackObjectFormationError past a limit
    if len(dicts) > MAX_BLOCKS:
        cut_note = f"… {len(dicts) - MAX_BLOCKS + 1} blocks cut"
        dicts = [
            *dicts[: MAX_BLOCKS - 1],
            {"type": "context", "elements": [{"type": "mrkdwn", "text": cut_note}]},
        ]
    return dicts


def _cut_escaped(text: str, limit: int) -> str:
    """``text`` is already escaped: cut without splitting an ``&amp;``-style entity."""
    if len(text) <= limit:
        return text
    marker = TRUNCATION_MARKER.format(n=len(text) - limit)
    keep = text[: max(0, limit - len(marker))]
    amp = keep.rfind("&")
    if amp != -1 and ";" not in keep[amp:]:
        keep = keep[:amp]
    return keep + marker


def fallback_text(view: MessageView, status_line: str = "") -> str:
    """The top-level ``text``: what notifications and screen readers show."""
    parts = [view.headline]
    if status_line:
        parts.append(status_line)
    if view.group_line:
        parts.append(view.group_line)
    return escape_cut(" · ".join(parts), MAX_TEXT)


def violations(payload: Mapping[str, Any]) -> list[str]:
    """Every way ``payload`` (a chat.postMessage/update or webhook body) breaks Slack's limits."""
    problems: list[str] = []
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        problems.append("text: missing (the notification fallback)")
    elif len(text) > MAX_TEXT:
        problems.append(f"text: {len(text)} > {MAX_TEXT}")
    blocks: Sequence[Any] = payload.get("blocks") or []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} > {MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > MAX_HEADER:
            problems.append(f"{where}.text: {len(block['text']['text'])} > {MAX_HEADER}")
        if kind == "section":
            if "text" in block and not 1 <= len(block["text"]["text"]) <= MAX_SECTION_TEXT:
                problems.append(f"{where}.text: {len(block['text']['text'])} chars")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"{where}.fields: {len(fields)} > {MAX_FIELDS}")
            for j, f in enumerate(fields):
                if not 1 <= len(f["text"]) <= MAX_FIELD_TEXT:
                    problems.append(f"{where}.fields[{j}]: {len(f['text'])} chars")
        if kind == "context" and len(block.get("elements") or []) > MAX_CONTEXT_ELEMENTS:
            problems.append(f"{where}.elements: more than {MAX_CONTEXT_ELEMENTS}")
        try:
            parsed = Block.parse(block)
            if parsed is None:
                problems.append(f"{where}: unknown block type {kind!r}")
            else:
                parsed.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
    if len(json.dumps(payload, ensure_ascii=False).encode()) > 3_000_000:
        problems.append("body: larger than any message Slack accepts")
    return problems
