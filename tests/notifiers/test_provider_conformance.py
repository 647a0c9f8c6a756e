"""Every registered destination type obeys the same rules; new providers are picked up here.

Parametrized over ``notifiers.providers.PROVIDERS`` at collection time, so a provider module
added later (commit statuses, ...) is checked without touching this file: the status-code and
error-body retry table, secrets never in outcomes or logs, output independent of the order of
metadata keys, and payloads inside the target's limits for hypothesis-generated notifications.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings

from notifiers.http import HttpClient, HttpResponse
from notifiers.model import Fail, Ok, Outcome, Retry
from notifiers.providers import PROVIDERS
from notifiers.providers.base import Conformance
from tests.notifiers.notification_samples import kinds, notifications, reorder_metadata

ALL = sorted(PROVIDERS)
HTTP = [name for name in ALL if PROVIDERS[name].conformance().http]

# The rows every HTTP destination shares (RFC 9110 and the webhook specs); a provider adds its
# own rows (error bodies, its success shape) in ``Conformance.cases``.
COMMON: list[tuple[str, int, dict[str, str], str, float | None]] = [
    ("429 Retry-After seconds", 429, {"Retry-After": "17"}, "retry", 17.0),
    ("500", 500, {}, "retry", None),
    ("502", 502, {}, "retry", None),
    ("503 Retry-After", 503, {"Retry-After": "5"}, "retry", None),
    ("504", 504, {}, "retry", None),
    ("400", 400, {}, "fail", None),
    ("401", 401, {}, "fail", None),
    ("403", 403, {}, "fail", None),
    ("404", 404, {}, "fail", None),
]


def kit(name: str) -> Conformance:
    return PROVIDERS[name].conformance()


def outcome_class(outcome: Outcome) -> str:
    return {Ok: "ok", Retry: "retry", Fail: "fail"}[type(outcome)]


def test_every_provider_is_covered() -> None:
    assert {"console", "webhook", "slack", "teams"} <= set(ALL)
    assert set(HTTP) >= {"webhook", "slack", "teams"}


@pytest.mark.parametrize("name", HTTP)
@pytest.mark.parametrize(
    ("label", "status", "headers", "expect", "after"), COMMON, ids=[c[0] for c in COMMON]
)
def test_common_status_table(
    name: str, label: str, status: int, headers: dict[str, str], expect: str, after: float | None
) -> None:
    outcome = kit(name).classify(HttpResponse(status, headers, b""), 1000.0)
    assert outcome_class(outcome) == expect, label
    if after is not None:
        assert isinstance(outcome, Retry)
        assert outcome.after == after


@pytest.mark.parametrize("name", HTTP)
def test_success_and_own_cases(name: str) -> None:
    k = kit(name)
    assert isinstance(k.classify(k.ok_response, 1000.0), Ok)
    for case in k.cases:
        outcome = k.classify(HttpResponse(case.status, case.headers, case.body), 1000.0)
        assert outcome_class(outcome) == case.expect, case.label
        if case.after is not None:
            assert isinstance(outcome, Retry)
            assert outcome.after == case.after, case.label


@pytest.mark.parametrize("name", ALL)
def test_options_repr_shows_no_secret(name: str) -> None:
    k = kit(name)
    for secret in k.secrets:
        assert secret not in repr(k.options)
        assert secret not in str(k.options)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sample", sorted(kinds()))
def test_output_is_independent_of_metadata_key_order(name: str, sample: str) -> None:
    n = kinds()[sample]
    k = kit(name)
    assert [r.body for r in k.build(n)] == [r.body for r in k.build(reorder_metadata(n))]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("sample", sorted(kinds()))
def test_every_message_kind_fits(name: str, sample: str) -> None:
    k = kit(name)
    requests = k.build(kinds()[sample])
    assert requests
    assert k.violations(requests) == []


@pytest.mark.parametrize("name", ALL)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(n=notifications())
def test_generated_notifications_fit_the_target_limits(name: str, n: Any) -> None:
    k = kit(name)
    requests = k.build(n)
    assert requests
    assert k.violations(requests) == []
    assert [r.body for r in requests] == [r.body for r in k.build(reorder_metadata(n))]


# ---- secrets, through the provider's real send() against a server that echoes everything ----


class EchoServer:
    """Answers with a scripted status and a body that repeats the whole request back."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], bool] = (200, {}, False)
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        status, headers, json_error = self.answer
        echo = f"{request.method} {request.path_qs} {dict(request.headers)} {await request.text()}"
        if json_error:
            body = json.dumps({"ok": False, "error": "invalid_auth", "echo": echo})
        else:
            body = echo
        return web.Response(status=status, headers=headers, text=body)

    async def start(self) -> EchoServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = await EchoServer().start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.mark.parametrize("name", HTTP)
async def test_secrets_never_in_outcomes_or_logs(
    name: str, echo: EchoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    k = kit(name)
    options = k.options_for(f"http://127.0.0.1:{echo.port}")
    provider = PROVIDERS[name].create("dest", options)
    http = HttpClient()
    from notifiers.providers.base import ProviderContext

    ctx = ProviderContext(http=http, console=io.StringIO(), clock=time.time)
    outcomes: list[Outcome] = []
    try:
        for status, json_error in [(400, False), (401, False), (500, False), (200, True)]:
            echo.answer = (status, {"Retry-After": "1"}, json_error)
            outcomes.append(await provider.send(kinds()["failing"], ctx, 5.0))
    finally:
        await http.close()
    assert any(not isinstance(o, Ok) for o in outcomes)
    text = " ".join(repr(o) for o in outcomes) + caplog.text
    for secret in k.secrets:
        assert secret not in text


@pytest.mark.parametrize("name", ALL)
def test_preview_shows_what_the_builder_builds(name: str) -> None:
    k = kit(name)
    n = kinds()["failing"]
    preview = PROVIDERS[name].preview(k.options, n)
    assert [r.body for r in preview.requests] == [r.body for r in k.build(n)]
    for secret in k.secrets:  # each secret is covered by something the preview masks
        assert any(secret in m or m in secret for m in preview.secrets)


# ---- what real networks do: dropped connections and answers that never come ----


class MisbehavingServer:
    """Reads part of a request, then resets the connection (drop) or never answers (hang)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.handlers: set[asyncio.Task[object]] = set()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        await reader.read(1024)
        if self.mode == "drop":
            writer.transport.abort()  # RST mid-request
            return
        try:
            await asyncio.Event().wait()  # until closed: the provider's timeout must fire
        finally:
            writer.transport.abort()

    async def __aenter__(self) -> MisbehavingServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()


@pytest.mark.parametrize("mode", ["drop", "hang"])
@pytest.mark.parametrize("name", HTTP)
async def test_dropped_and_hanging_connections_are_retried(
    name: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    k = kit(name)
    http = HttpClient()
    from notifiers.providers.base import ProviderContext

    ctx = ProviderContext(http=http, console=io.StringIO(), clock=time.time)
    try:
        async with MisbehavingServer(mode) as server:
            url = f"http://127.0.0.1:{server.port}"
            provider = PROVIDERS[name].create("dest", k.options_for(url))
            outcome = await provider.send(kinds()["failing"], ctx, 0.5)
    finally:
        await http.close()
    assert isinstance(outcome, Retry), outcome
    for secret in k.secrets:
        assert secret not in outcome.reason
        assert secret not in caplog.text
