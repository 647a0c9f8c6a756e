"""List and watch one Flux kind in one cluster, forever, feeding the sink.

Three thin layers, as in kopf's watching:

- ``infinite_watch`` reconnects forever with backoff and jitter (honouring ``Retry-After``); it
  keeps the last seen resourceVersion across reconnects, so a dropped stream resumes where it
  stopped instead of relisting everything.
- ``continuous_watch`` lists when it has no version (first start, or after 410 Gone), handing
  the complete set to ``sink.replace`` in one call so a scrape never sees a half-filled kind, then
  watches from the list's version; a server-side timeout resumes from the last version.
- ``watch_once`` is one watch request with bookmarks on and ``timeoutSeconds``, and an
  inactivity deadline pushed back on every line, so a silent dead stream (half-open TCP) is
  noticed. It decodes lines itself: a malformed line is counted and skipped, unknown event types
  are logged and skipped, and other ERROR events raise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, Protocol

import aiohttp

from exporter.kinds import FluxKind
from exporter.kube.backoff import backoff_delay
from exporter.kube.client import ApiError, ConnectionFailed, KubeClient
from exporter.kube.health import ClusterCounters, RestartReason, WatchHealth
from exporter.settings import WatchSettings
from exporter.sink import FluxObjectSink

log = logging.getLogger(__name__)

WatchEnd = Literal["timeout", "gone"]
_MAX_LOGGED_PROBLEMS = 20  # per watcher: enough to diagnose, never one line per object


class InactivityTimeout(Exception):
    """The stream stayed silent longer than the inactivity timeout."""


class StreamEndedEarly(Exception):
    """The stream ended at once without a line: retried with backoff, not in a tight loop."""


class WatchObserver(Protocol):
    """The cluster's bookkeeping, told about outcomes that change the cluster's state."""

    def request_succeeded(self, kind: str = "") -> None:
        """A request for ``kind`` ("" for discovery) got an answer: the API is reachable."""

    def request_failed(self, error: BaseException, kind: str = "") -> None:
        """A request failed; connection-level failures make the cluster unreachable, 401/403
        mark its credentials as rejected (for ``kind``, "" for discovery)."""

    def listed(self, kind: str, count: int) -> None:
        """A complete list of ``kind`` was handed to the sink."""


@dataclass(frozen=True, slots=True)
class WatchTarget:
    cluster: str
    kind: FluxKind
    version: str
    namespace: str = ""
    label_selector: str = ""

    @property
    def path(self) -> str:
        base = f"/apis/{self.kind.group}/{self.version}"
        if self.namespace:
            return f"{base}/namespaces/{self.namespace}/{self.kind.plural}"
        return f"{base}/{self.kind.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.kind.group}/{self.version}"


@dataclass(slots=True)
class WatchState:
    """What survives a reconnect: the version to resume from and the retry count."""

    resource_version: str | None = None
    attempt: int = 0
    lists: int = 0
    problems_logged: int = 0


@dataclass(slots=True)
class Watcher:
    """Everything one kind's watch needs; ``owns_uid`` filters objects for object sharding."""

    client: KubeClient
    target: WatchTarget
    sink: FluxObjectSink
    settings: WatchSettings
    observer: WatchObserver
    health: WatchHealth
    list_gate: asyncio.Semaphore
    owns_uid: Callable[[str], bool] | None = None
    rng: random.Random = field(default_factory=random.Random)
    state: WatchState = field(default_factory=WatchState)

    @property
    def counters(self) -> ClusterCounters:
        return self.health.cluster(self.target.cluster)

    def problem(self, text: str, *args: object) -> None:
        """Logs a bad object or event, a bounded number of times per watcher."""
        if self.state.problems_logged < _MAX_LOGGED_PROBLEMS:
            self.state.problems_logged += 1
            log.warning("cluster %s %s: " + text, self.target.cluster, self.target.kind.kind, *args)


async def infinite_watch(watcher: Watcher) -> NoReturn:
    """Keeps one kind in sync forever; returns only by cancellation."""
    target = watcher.target
    while True:
        reason: RestartReason = "error"
        retry_after: float | None = None
        try:
            await continuous_watch(watcher)
        except StreamEndedEarly:
            pass  # an "error" restart with backoff; not an API error, the server did answer
        except InactivityTimeout:
            reason = "inactivity"
            log.info("cluster %s %s: watch silent, reconnecting", target.cluster, target.kind.kind)
        except ApiError as exc:
            watcher.health.api_error(target.cluster, exc.code)
            watcher.observer.request_failed(exc, target.kind.kind)
            retry_after = exc.retry_after
            if exc.code == 410:
                watcher.state.resource_version = None  # e.g. an expired list continue token
        except ConnectionFailed as exc:
            watcher.health.api_error(target.cluster, None)
            watcher.observer.request_failed(exc, target.kind.kind)
        except Exception:  # a bug here must cost one reconnect, not the kind's watch forever
            log.exception("cluster %s %s: watch failed", target.cluster, target.kind.kind)
        watcher.health.restart(target.cluster, reason)
        if reason == "inactivity" and watcher.state.attempt == 0:
            delay = 0.0  # a silent stream is not the server's fault: reopen at once, once
        else:
            delay = backoff_delay(
                watcher.state.attempt, watcher.settings.backoff, watcher.rng.random(), retry_after
            )
        watcher.state.attempt += 1
        await asyncio.sleep(delay)


async def continuous_watch(watcher: Watcher) -> NoReturn:
    """List when there is no version to resume from, then watch; raises on errors."""
    state = watcher.state
    while True:
        if state.resource_version is None:
            state.resource_version = await list_objects(watcher)
        end = await watch_once(watcher, state.resource_version)
        if end == "gone":
            watcher.health.restart(watcher.target.cluster, "gone")
            state.resource_version = None
        else:
            watcher.health.restart(watcher.target.cluster, "timeout")


async def list_objects(watcher: Watcher) -> str:
    """Lists every page, hands the complete set to ``sink.replace``; returns the list's version."""
    target = watcher.target
    objects: list[Mapping[str, Any]] = []
    continue_token = ""
    resource_version = ""
    async with watcher.list_gate:
        while True:
            query = [("limit", str(watcher.settings.page_size))]
            if continue_token:
                query.append(("continue", continue_token))
            if target.label_selector:
                query.append(("labelSelector", target.label_selector))
            page = await watcher.client.get_json(
                target.path, query, deadline=watcher.settings.request_timeout_seconds
            )
            watcher.observer.request_succeeded(target.kind.kind)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise ApiError(200, "InvalidList", f"{target.path}: no items in the list")
            for item in page["items"]:
                obj = _checked_object(watcher, item, "list item")
                if obj is not None and _owned(watcher, obj):
                    objects.append(obj)
            metadata = page.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            resource_version = str(metadata.get("resourceVersion") or resource_version)
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                break
    try:
        watcher.sink.replace(target.cluster, target.kind.kind, objects)
    except Exception:  # a store bug must not stop the watch; it is logged with its traceback
        log.exception("cluster %s %s: the store rejected a list", target.cluster, target.kind.kind)
        watcher.counters.decode_errors.inc()
    watcher.state.attempt = 0
    if watcher.state.lists:
        watcher.counters.relists.inc()
    watcher.state.lists += 1
    watcher.observer.listed(target.kind.kind, len(objects))
    return resource_version


async def watch_once(watcher: Watcher, resource_version: str) -> WatchEnd:
    """One watch request from ``resource_version``; returns how it ended, raises on errors."""
    target = watcher.target
    settings = watcher.settings
    query = [
        ("watch", "true"),
        ("allowWatchBookmarks", "true"),
        ("resourceVersion", resource_version),
        ("timeoutSeconds", str(max(1, int(settings.server_timeout_seconds)))),
    ]
    if target.label_selector:
        query.append(("labelSelector", target.label_selector))
    loop = asyncio.get_running_loop()
    try:
        async with watcher.client.stream(
            target.path, query, connect_timeout=settings.request_timeout_seconds
        ) as content:
            watcher.observer.request_succeeded(target.kind.kind)
            inactivity = settings.inactivity_timeout_seconds
            opened = loop.time()
            lines = 0
            try:
                async with asyncio.timeout_at(loop.time() + inactivity) as deadline:
                    while True:
                        line = await content.readline()
                        if not line:
                            if not lines and loop.time() - opened < _too_short(settings):
                                # Something between us and the API cuts every stream at once;
                                # reconnecting at once would hammer it, so back off instead.
                                raise StreamEndedEarly()
                            watcher.state.attempt = 0
                            return "timeout"  # the server ended the stream (timeoutSeconds)
                        lines += 1
                        watcher.state.attempt = 0
                        deadline.reschedule(loop.time() + inactivity)
                        if handle_line(watcher, line) == "gone":
                            return "gone"
            except TimeoutError:
                if deadline.expired():
                    raise InactivityTimeout() from None
                raise ConnectionFailed("timed out reading the watch stream") from None
            except ValueError as exc:  # aiohttp: a line longer than its buffer limit
                watcher.counters.decode_errors.inc()
                watcher.problem("unreadable watch line (%s); reconnecting", exc)
                return "timeout"
    except ApiError as exc:
        if exc.code == 410:  # some servers refuse an expired version with a status, not an event
            return "gone"
        raise
    except (OSError, asyncio.IncompleteReadError, aiohttp.ClientError) as exc:
        raise ConnectionFailed(f"watch stream broke: {type(exc).__name__}") from exc


def _too_short(settings: WatchSettings) -> float:
    return min(1.0, settings.server_timeout_seconds / 2)


def handle_line(watcher: Watcher, line: bytes) -> Literal["gone"] | None:
    """Applies one watch line; returns "gone" on a 410 ERROR, raises on other ERRORs."""
    target = watcher.target
    state = watcher.state
    try:
        event = json.loads(line)
    except ValueError:
        watcher.counters.decode_errors.inc()
        watcher.problem("watch line is not JSON (%d bytes), skipped", len(line))
        return None
    if not isinstance(event, dict):
        watcher.counters.decode_errors.inc()
        watcher.problem("watch line is not an event object, skipped")
        return None
    event_type = event.get("type")
    raw = event.get("object")
    if event_type == "ERROR":
        status = raw if isinstance(raw, dict) else {}
        code = status.get("code")
        if code == 410:
            return "gone"
        raise ApiError(
            code if isinstance(code, int) else 500,
            str(status.get("reason") or "WatchError"),
            str(status.get("message") or ""),
        )
    if event_type == "BOOKMARK":
        version = _resource_version(raw)
        if version:
            state.resource_version = version
        return None
    if event_type not in ("ADDED", "MODIFIED", "DELETED"):
        watcher.problem("unknown watch event type %r, skipped", event_type)
        return None
    obj = _checked_object(watcher, raw, f"{event_type} event")
    if obj is None:
        return None
    version = _resource_version(obj)
    if _owned(watcher, obj):
        try:
            if event_type == "DELETED":
                watcher.sink.delete(target.cluster, target.kind.kind, obj)
            else:
                watcher.sink.upsert(target.cluster, target.kind.kind, obj)
        except Exception:  # a store bug must not stop the watch
            watcher.counters.decode_errors.inc()
            log.exception(
                "cluster %s %s: the store rejected %s", target.cluster, target.kind.kind, _id(obj)
            )
        watcher.counters.events.inc()
    if version:
        state.resource_version = version
    return None


def _checked_object(watcher: Watcher, raw: Any, what: str) -> dict[str, Any] | None:
    """The object if it has the identity the watch layer relies on; else counted and skipped."""
    metadata = raw.get("metadata") if isinstance(raw, dict) else None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("uid"), str)
        or not isinstance(metadata.get("name"), str)
    ):
        watcher.counters.decode_errors.inc()
        watcher.problem("%s without metadata.name/uid, skipped", what)
        return None
    assert isinstance(raw, dict)
    return raw


def _owned(watcher: Watcher, obj: dict[str, Any]) -> bool:
    """Whether this replica exports the object (object sharding); if so, completes its shape."""
    if watcher.owns_uid is not None and not watcher.owns_uid(obj["metadata"]["uid"]):
        return False
    # List items of built-in types omit these; set them so the store sees one shape.
    obj.setdefault("apiVersion", watcher.target.api_version)
    obj.setdefault("kind", watcher.target.kind.kind)
    return True


def _resource_version(raw: Any) -> str:
    metadata = raw.get("metadata") if isinstance(raw, dict) else None
    version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else ""


def _id(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
