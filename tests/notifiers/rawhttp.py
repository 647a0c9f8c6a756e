"""A raw HTTP/1.1 client over asyncio streams that writes a request body in pieces with pauses.

Real networks deliver a large body in several TCP segments, milliseconds apart; aiohttp's
client writes small bodies in one go on loopback, which hides servers that read only what is
buffered. Shared by the intake tests of every path that accepts a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    status: int
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def split(body: bytes, pieces: int) -> list[bytes]:
    """``pieces`` non-empty slices of nearly equal size (fewer for a tiny body)."""
    size = max(1, -(-len(body) // pieces))
    return [body[i : i + size] for i in range(0, len(body), size)]


async def post_in_pieces(
    port: int,
    path: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    pieces: int = 3,
    pause: float = 0.04,
    chunked: bool = False,
) -> RawResponse:
    """POST ``body`` in ``pieces`` writes, ``pause`` seconds apart, each flushed on its own.

    With ``chunked`` the body goes as Transfer-Encoding: chunked, one chunk per piece, and no
    Content-Length. The server may answer early (413) and close; writing then stops.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    if sock is not None:  # each write leaves as its own segment
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines.append("Content-Type: application/json")
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        for piece in split(body, pieces):
            await asyncio.sleep(pause)  # the gap a real network leaves between segments
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionResetError, BrokenPipeError):
        pass  # answered (and closed) before the whole body was sent: read the answer
    try:
        raw = await reader.read()
    except ConnectionResetError:
        raw = b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await writer.wait_closed()
    head, _, rest = raw.partition(b"\r\n\r\n")
    if not head:
        raise AssertionError("the server closed the connection without an answer")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        rest = _dechunk(rest)
    return RawResponse(status, rest)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)
