"""One shared HTTP client for every provider: POST bytes, bounded reads, no secrets in errors.

Providers build requests (pure) and classify responses (pure); this module is the only place
that talks to the network, so timeouts, connection reuse and redaction are written once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

MAX_RESPONSE_BYTES = 64 * 1024  # enough for any error body worth recording


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class TransportError(Exception):
    """Connection refused, reset, TLS or timeout: always worth a retry. Message is redacted."""


def redact_url(url: str) -> str:
    """Scheme and host only: paths and queries of webhook URLs are often the secret."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/<redacted>"


def truncate_utf8(text: str, limit: int) -> str:
    """Cut to at most ``limit`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(0, limit - 3)].decode("utf-8", errors="ignore") + "..."


class HttpClient:
    """Wraps one ``aiohttp.ClientSession``; create inside a running loop, ``close`` when done."""

    def __init__(self, *, limit: int = 100) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        await self._session.close()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> HttpResponse:
        try:
            async with self._session.post(
                url,
                data=body,
                headers={"User-Agent": "fluxwatch-bridge", **headers},
                timeout=aiohttp.ClientTimeout(total=timeout_seconds),
                allow_redirects=False,  # the webhook specs say never follow redirects
            ) as resp:
                content = await resp.content.read(MAX_RESPONSE_BYTES)
                return HttpResponse(resp.status, dict(resp.headers), content)
        except TimeoutError:
            raise TransportError(
                f"timeout after {timeout_seconds:g}s posting to {redact_url(url)}"
            ) from None
        except asyncio.CancelledError:
            raise
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__} posting to {redact_url(url)}") from None
        except OSError as exc:
            raise TransportError(f"{type(exc).__name__} posting to {redact_url(url)}") from None
