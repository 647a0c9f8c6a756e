"""Serving one aiohttp application on one address: start, report where, stop.

The exporter, the bridge and the simulator each serve HTTP. A failed bind (the port is in use,
the address is not on this host) becomes ``ListenError`` with one line naming the address, and
leaves nothing behind; the address actually bound (the real port when 0 was asked for) comes
from aiohttp's public ``AppRunner.addresses`` and is what the logs and ``url`` show.
"""

from __future__ import annotations

import errno
import logging
import os
import ssl

from aiohttp import web

log = logging.getLogger("fluxwatch.http")


class ListenError(Exception):
    """The server could not listen; the message is one line naming the address and why."""


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9797`` for IPv6; an empty host is every address) to host and port.

    Raises ``ValueError`` naming the value; callers add where it came from.
    """
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port_text)


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (is another fluxwatch or another program running there?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this host"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc.strerror or exc).lower()  # e.g. a host name that does not resolve


class HttpServer:
    """``await start()``, then ``host``/``port``/``url`` name the bound address; ``stop()``."""

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        name: str,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._runner: web.AppRunner | None = None

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def url(self) -> str:
        """Base URL a client on this host can connect to (wildcard hosts become loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"{self.scheme}://{format_address(host, self.port)}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen, or raise ``ListenError`` with nothing left open."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(
            runner, self.host, self.port, ssl_context=self._ssl_context, backlog=self._backlog
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenError(
                f"{self.name}: cannot listen on {format_address(self.host, self.port)}: "
                f"{_reason(exc)}"
            ) from None
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        if addresses:
            self.port = int(addresses[0][1])
        log.info(
            "%s listening on %s (%s)",
            self.name,
            format_address(self.host, self.port),
            self.url,
        )

    async def stop(self) -> None:
        """Stop listening and close open connections; safe to call when not started."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
