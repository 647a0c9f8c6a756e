"""The events notification-controller delivers to a ``generic``/``generic-hmac`` Provider.

``build_event`` is pure (the clock and the object are passed in); ``EventSink`` is the thin I/O
edge that POSTs them from a bounded queue, so a slow or absent receiver never stalls the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

log = logging.getLogger("simulator.events")

Severity = Literal["info", "error"]
QUEUE_LIMIT = 10_000


def build_event(
    *,
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
    uid: str,
    resource_version: str,
    severity: Severity,
    timestamp: str,
    message: str,
    reason: str,
    metadata: Mapping[str, str],
    controller: str,
    instance: str,
) -> dict[str, Any]:
    """The event JSON in notification-controller's wire order (Go struct order; the metadata
    map's keys sorted, as Go marshals maps). Metadata keys carry no group prefix."""
    event: dict[str, Any] = {
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "apiVersion": api_version,
            "resourceVersion": resource_version,
        },
        "severity": severity,
        "timestamp": timestamp,
        "message": message,
        "reason": reason,
    }
    if metadata:
        event["metadata"] = {k: metadata[k] for k in sorted(metadata)}
    event["reportingController"] = controller
    event["reportingInstance"] = instance
    return event


def signature(body: bytes, key: bytes) -> str:
    """``X-Signature`` of the generic-hmac provider: HMAC-SHA256 over the exact body."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Outbound:
    cluster: str
    controller: str
    body: bytes


class EventSink:
    """POSTs events in order from a bounded queue; counts what was sent, failed or dropped."""

    def __init__(self, url: str, hmac_key: bytes | None) -> None:
        self.url = url
        self.hmac_key = hmac_key
        self.queue: asyncio.Queue[Outbound] = asyncio.Queue(QUEUE_LIMIT)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def offer(self, cluster: str, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        try:
            self.queue.put_nowait(Outbound(cluster, event["reportingController"], body))
        except asyncio.QueueFull:
            self.dropped += 1

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._task = asyncio.create_task(self._run(), name="simulator-events")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def drain(self) -> None:
        """Wait until every queued event was attempted (for tests and orderly shutdown)."""
        await self.queue.join()

    async def _run(self) -> None:
        assert self._session is not None
        while True:
            item = await self.queue.get()
            try:
                await self._post(self._session, item)
            finally:
                self.queue.task_done()

    async def _post(self, session: aiohttp.ClientSession, item: Outbound) -> None:
        headers = {"Content-Type": "application/json", "Gotk-Component": item.controller}
        if self.hmac_key is not None:
            headers["X-Signature"] = signature(item.body, self.hmac_key)
        url = self.url.replace("{cluster}", item.cluster)
        try:
            async with session.post(url, data=item.body, headers=headers) as response:
                await response.read()
                if response.status >= 300:
                    self.failed += 1
                    log.warning("event POST answered %s", response.status)
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failed += 1
            log.warning("event POST failed: %s", type(exc).__name__)
            return
        self.sent += 1
