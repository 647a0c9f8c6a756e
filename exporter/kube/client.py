"""A thin read-only HTTP layer over one cluster's ``kubernetes_asyncio`` ``ApiClient``.

The generated API classes deserialize into models and raise on the first bad status; the watch
layer wants neither. It needs the status code (410 relists, 429/503 honour ``Retry-After``),
the raw JSON of custom resources, and a line-by-line stream it decodes itself so a malformed
event is counted and skipped instead of ending the watch. So requests go through
``ApiClient.call_api`` with ``_preload_content=False``, which keeps the client's auth (bearer
token, exec plugin, client certificate, in-cluster token refresh) and TLS handling.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from exporter.kube.backoff import parse_retry_after

_MESSAGE_LIMIT = 300  # API error messages end up in logs and on the status page
TLS_READ_BUFFER = 1024


def limit_tls_read_buffers(size: int = TLS_READ_BUFFER) -> None:
    """Shrinks asyncio's per-connection TLS receive buffer (256 KiB, allocated up front).

    HTTP/1.1 needs one connection per open watch: 14 per cluster, 7,000 for a 500-cluster fleet,
    which at 256 KiB each is 1.7 GiB of buffers that are nearly always empty (a watch line is a
    few KiB). Each connection also keeps an incoming ``MemoryBIO`` sized to the largest chunk
    written into it, so the size counts about twice: measured on 700 watches, 4 KiB costs 5 KiB
    per connection more than 1 KiB (35 MiB for 7,000), with no measurable change in the CPU of
    an initial sync; large list pages just take more reads. The buffer size is a class attribute
    of the stdlib protocol, hence process-wide; it only ever lowers it.
    """
    from asyncio import sslproto

    if sslproto.SSLProtocol.max_size > size:
        sslproto.SSLProtocol.max_size = size


class ApiError(Exception):
    """The API answered with an error status (HTTP, or an ERROR event's ``Status``)."""

    def __init__(
        self, code: int, reason: str, message: str = "", retry_after: float | None = None
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message[:_MESSAGE_LIMIT]
        self.retry_after = retry_after
        super().__init__(f"{code} {reason}: {self.message}" if self.message else f"{code} {reason}")


class ConnectionFailed(Exception):
    """No answer at all: refused, reset, TLS failure, DNS, timeout."""


class KubeClient:
    """GET-only access to one cluster; every method raises ``ApiError`` or ``ConnectionFailed``."""

    def __init__(
        self,
        api: Any,  # kubernetes_asyncio.client.ApiClient (untyped library)
        *,
        on_unauthorized: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.api = api
        self._on_unauthorized = on_unauthorized

    async def close(self) -> None:
        await self.api.close()

    async def _request(
        self,
        path: str,
        query: Sequence[tuple[str, str]],
        limits: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        try:
            response: aiohttp.ClientResponse = await self.api.call_api(
                path,
                "GET",
                query_params=list(query),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=limits,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ConnectionFailed(_describe(exc)) from exc
        if response.status >= 400:
            error = await _error_from_response(response)
            if response.status == 401 and self._on_unauthorized is not None:
                await self._on_unauthorized()  # e.g. re-run an exec plugin, as kubectl does
            raise error
        return response

    async def get_json(
        self, path: str, query: Sequence[tuple[str, str]] = (), *, deadline: float
    ) -> Any:
        """One request, the decoded JSON body; the whole exchange takes at most ``deadline`` s."""
        response = await self._request(path, query, aiohttp.ClientTimeout(total=deadline))
        try:
            body = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ConnectionFailed(_describe(exc)) from exc
        finally:
            response.release()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ApiError(response.status, "InvalidJSON", f"{path}: {exc}") from None

    @asynccontextmanager
    async def stream(
        self, path: str, query: Sequence[tuple[str, str]], *, connect_timeout: float
    ) -> AsyncIterator[aiohttp.StreamReader]:
        """A long-lived response whose body is read line by line by the caller.

        Only connecting is bounded here; the caller bounds silence with its inactivity timeout.
        """
        limits = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout
        )
        response = await self._request(path, query, limits)
        _drop_decoded_peer_certificate(response)
        try:
            yield response.content
        finally:
            response.close()  # never reuse a half-read stream's connection


def _drop_decoded_peer_certificate(response: aiohttp.ClientResponse) -> None:
    """Forgets asyncio's decoded copy of the server certificate on a long-lived stream.

    asyncio keeps ``getpeercert()`` as a dict of tuples in each TLS transport's extra info:
    2.1 KiB per connection, 15 MiB over the 7,000 watch streams of a 500-cluster fleet, and
    nothing reads it (verification happened in the handshake; aiohttp's fingerprint check asks
    the SSL object for the binary form). The transport's extra-info dict is not public API, so
    this only acts when it is there.
    """
    connection = response.connection
    protocol = getattr(connection.transport if connection else None, "_ssl_protocol", None)
    extra = getattr(protocol, "_extra", None)
    if isinstance(extra, dict):
        extra.pop("peercert", None)


async def _error_from_response(response: aiohttp.ClientResponse) -> ApiError:
    retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
    reason = response.reason or ""
    message = ""
    try:
        body = await response.read()
        status = json.loads(body)
        if isinstance(status, dict):
            reason = str(status.get("reason") or reason)
            message = str(status.get("message") or "")
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
        pass  # the status code alone is enough to act on
    finally:
        response.release()
    return ApiError(response.status, reason, message, retry_after)


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a transport error (no headers, no URLs' queries)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:_MESSAGE_LIMIT]
