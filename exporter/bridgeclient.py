"""The exporter's HTTP path to a bridge running in another process or pod (``--bridge-url``).

Exporters sharded over a fleet each watch a part of it; one bridge must see all of it. Each
exporter POSTs its transitions and its rollout reports (every applier object's revisions per
cluster) to the bridge with a bearer token. The bridge answers 202 only after storing them, so an
item leaves this client's memory only once it is durable on the other side.

- Transitions wait in a bounded buffer (``buffer_size``); when the bridge is away longer than the
  buffer lasts, the oldest are dropped and counted (``fluxwatch_exporter_bridge_dropped_total``).
  Everything still held when the bridge comes back is sent: a bridge restart loses nothing here.
- Rollout reports are state, not history: the newest report of each cluster replaces the
  previous unsent one, so they need no bound beyond the number of clusters and are never dropped.
- Failures are retried with exponential backoff and jitter; a 401 is logged once per streak
  (the token is never logged) and retried, since a rotated token may still arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from exporter.selfmetrics import SelfMetrics
from exporter.transitions import Transition

log = logging.getLogger(__name__)

TRANSITIONS_PATH = "/exporter/v1/transitions"
ROLLOUTS_PATH = "/exporter/v1/rollouts"
DEFAULT_BUFFER_SIZE = 50_000
MAX_BATCH = 500
INITIAL_BACKOFF = 0.2
MAX_BACKOFF = 30.0
REQUEST_TIMEOUT = 30.0


_REFUSED: dict[str, Any] = {"refused": True}  # identity-compared marker


@dataclass(frozen=True, slots=True)
class ShardIdentity:
    """Which part of the fleet this exporter watches, so the bridge knows when it heard from all."""

    shard: int = 0
    total_shards: int = 1


def backoff_delay(failures: int, rng: random.Random) -> float:
    """Exponential with equal jitter: half fixed, half random, capped."""
    base = min(MAX_BACKOFF, INITIAL_BACKOFF * 2 ** max(failures - 1, 0))
    return float(base / 2 + rng.uniform(0, base / 2))


def transitions_body(batch: Sequence[Transition], shard: ShardIdentity) -> bytes:
    doc = {
        "shard": shard.shard,
        "total_shards": shard.total_shards,
        "transitions": [t.as_dict() for t in batch],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def rollouts_body(
    clusters: Mapping[str, Sequence[Mapping[str, Any]]], shard: ShardIdentity, synced: bool
) -> bytes:
    doc = {
        "shard": shard.shard,
        "total_shards": shard.total_shards,
        "synced": synced,
        "clusters": [
            {"cluster": name, "objects": list(objects)}
            for name, objects in sorted(clusters.items())
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class BridgeClient:
    """A ``TransitionSink`` and rollout reporter that POSTs to a remote bridge; see module doc."""

    def __init__(
        self,
        url: str,
        token: str,
        metrics: SelfMetrics,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        rng: random.Random | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._base = url.rstrip("/")
        self._token = token
        self._metrics = metrics
        self._buffer: deque[Transition] = deque()
        self._buffer_size = buffer_size
        self._reports: dict[str, list[Mapping[str, Any]]] = {}
        self._synced = False
        self.shard = ShardIdentity()
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._failures = 0
        self._unauthorized_logged = False

    def __repr__(self) -> str:  # the token never appears, even in debug output
        return f"BridgeClient({self._base!r})"

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def unsent_reports(self) -> int:
        return len(self._reports)

    # ---- producers (called on the exporter's loop, never block) ----

    async def publish(self, transition: Transition) -> None:
        if len(self._buffer) >= self._buffer_size:
            self._buffer.popleft()
            self._metrics.bridge_dropped.labels("buffer_full").inc()
        self._buffer.append(transition)
        self._metrics.bridge_buffered.set(len(self._buffer))
        self._wake.set()

    def report(self, clusters: Mapping[str, Sequence[Mapping[str, Any]]], synced: bool) -> None:
        """The latest applier objects of each changed cluster (an empty list: none left)."""
        for name, objects in clusters.items():
            self._reports[name] = list(objects)
        self._synced = synced
        if clusters:
            self._wake.set()

    # ---- lifecycle ----

    def start(self) -> None:
        if self._task is None:
            self._session = aiohttp.ClientSession()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="bridge-client")

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until everything held has been acknowledged (for shutdown and tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._buffer or self._reports:
            if loop.time() >= deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.02)
        return True

    async def stop(self, grace: float = 5.0) -> None:
        if self._task is None:
            return
        if not await self.flush(grace):
            log.warning(
                "stopping with %d transitions and %d cluster reports unacknowledged by the bridge",
                len(self._buffer),
                len(self._reports),
            )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- the sender ----

    async def _run(self) -> None:
        while True:
            if not self._buffer and not self._reports:
                self._wake.clear()
                await self._wake.wait()
            ok = await self._send_reports() and await self._send_transitions()
            if ok:
                self._failures = 0
                continue
            self._failures += 1
            await self._sleep(backoff_delay(self._failures, self._rng))

    async def _send_reports(self) -> bool:
        if not self._reports:
            return True
        taken = dict(self._reports)
        body = rollouts_body(taken, self.shard, self._synced)
        answer = await self._post(ROLLOUTS_PATH, body)
        if answer is None:
            return False
        if answer is _REFUSED:
            self._metrics.bridge_dropped.labels("rejected").inc(len(taken))
        for name, objects in taken.items():
            if self._reports.get(name) is objects:  # not replaced by a newer report meanwhile
                del self._reports[name]
        self._metrics.bridge_sent.labels("rollout_report").inc(len(taken))
        return True

    async def _send_transitions(self) -> bool:
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(MAX_BATCH, len(self._buffer)))]
            answer = await self._post(TRANSITIONS_PATH, transitions_body(batch, self.shard))
            if answer is None:
                return False
            # The buffer only grows at the right and drops at the left while we wait: the
            # batch is whatever of it is still at the left.
            for item in batch:
                if self._buffer and self._buffer[0] is item:
                    self._buffer.popleft()
            rejected = answer.get("rejected")
            n_rejected = len(rejected) if isinstance(rejected, list) else 0
            if answer is _REFUSED:
                n_rejected = len(batch)
            if n_rejected:
                self._metrics.bridge_dropped.labels("rejected").inc(n_rejected)
            self._metrics.bridge_sent.labels("transition").inc(len(batch) - n_rejected)
            self._metrics.bridge_buffered.set(len(self._buffer))
        return True

    async def _post(self, path: str, body: bytes) -> dict[str, Any] | None:
        """The decoded 2xx answer; ``_REFUSED`` when the bridge refused the body for good (a
        400: sending it again cannot help); None after counting why it failed (retry)."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        try:
            async with self._session.post(
                self._base + path,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            ) as resp:
                text = await resp.read()
                status = resp.status
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._metrics.bridge_post_errors.labels("connection").inc()
            if self._failures == 0:
                log.warning(
                    "bridge at %s unreachable (%s); retrying", self._base, type(exc).__name__
                )
            return None
        if 200 <= status < 300:
            self._unauthorized_logged = False
            try:
                answer = json.loads(text) if text else {}
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) else {}
        if status in (401, 403):
            self._metrics.bridge_post_errors.labels("unauthorized").inc()
            if not self._unauthorized_logged:
                log.error("the bridge refused the exporter token (HTTP %d); retrying", status)
                self._unauthorized_logged = True
        elif status >= 500 or status in (408, 425, 429):
            self._metrics.bridge_post_errors.labels("server_error").inc()
        else:
            self._metrics.bridge_post_errors.labels("rejected").inc()
            log.error("the bridge rejected a batch (HTTP %d): %r", status, text[:200])
            return _REFUSED
        return None
