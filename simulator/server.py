"""The HTTPS server: N virtual kube-apiservers on one port, one per ``/clusters/<name>`` prefix.

It speaks the read side of the Kubernetes API (discovery, get, list, watch) exactly as a client
library expects, and exposes a control API for tests (``SimulatorServer.cluster(name)``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from plumbing.http_server import HttpServer
from simulator import tls, wire
from simulator.engine import Engine
from simulator.events import EventSink
from simulator.kinds import BY_KIND, BY_PLURAL, KindInfo
from simulator.model import Obj, iso
from simulator.scenario import Fault, Scenario
from simulator.store import ClusterStore, Outage, Stored, TooOld, Watcher

log = logging.getLogger("simulator.server")

JSON = "application/json"
# How much engine work runs between two yields to the event loop, so watchers keep streaming
# while a large ``advance`` or a fast time scale is being processed.
ENGINE_BUDGET = 2_000
TICK = 0.05


def _json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.encode(doc), status=status, content_type=JSON)


def _status_response(code: int, reason: str, message: str) -> web.Response:
    return _json_response(wire.status_doc(code, reason, message), code)


class ClusterHandle:
    """Test-control handle of one cluster: read and change what its API serves."""

    def __init__(self, server: SimulatorServer, store: ClusterStore) -> None:
        self._server = server
        self._store = store
        self.name = store.name

    @property
    def resource_version(self) -> int:
        return self._store.resource_version

    @property
    def profile(self) -> str:
        return self._store.profile

    @property
    def token(self) -> str:
        return self._server.tokens[self.name]

    @property
    def server_url(self) -> str:
        return f"{self._server.base_url}/clusters/{self.name}"

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Deep copies of every object of ``kind`` as the API serves them, sorted by key."""
        info = BY_KIND[kind]
        return [self._store.decoded(s) for s in self._store.items(info.plural)]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        stored = self._store.get(kind, namespace, name)
        return None if stored is None else self._store.decoded(stored)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a whole object (status included); emits ADDED or MODIFIED.

        An object the engine was simulating is handed over to the caller: the engine no longer
        writes its status, so a test keeps exactly what it applied."""
        kind = obj.get("kind", "")
        if kind not in BY_KIND or not self._store.serves(kind):
            raise ValueError(f"{self.name} does not serve kind {kind!r}")
        info = BY_KIND[kind]
        meta = dict(obj.get("metadata") or {})
        namespace, name = meta.get("namespace"), meta.get("name")
        if not namespace or not name:
            raise ValueError("metadata.namespace and metadata.name are required")
        expected = self._store.api_versions[kind].decode()
        if obj.get("apiVersion", expected) != expected:
            raise ValueError(f"{self.name} serves {kind} as {expected}, not {obj['apiVersion']}")
        existing = self._store.get(kind, namespace, name)
        meta.setdefault("uid", existing.meta["uid"] if existing else secrets.token_hex(16))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", iso(self._server.engine.now))
        engine_obj = self._server.engine.objs.get(self.name, {}).get((kind, namespace, name))
        if engine_obj is not None:
            engine_obj.managed = False
        status = obj.get("status")
        stored = self._store.put(
            info,
            namespace,
            name,
            meta,
            wire.encode(obj.get("spec", {})),
            None if status is None else wire.encode(status),
        )
        return self._store.decoded(stored)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Remove an object; emits DELETED. The engine forgets it."""
        engine_obj = self._server.engine.objs.get(self.name, {}).pop((kind, namespace, name), None)
        if engine_obj is not None:
            engine_obj.managed = False
        return self._store.delete(kind, namespace, name)

    def set_outage(self, mode: Outage | None) -> None:
        """``refuse``: requests are dropped without an answer; ``unavailable``: 503; None: back.
        Open watches of this cluster end either way."""
        self._server.engine.set_outage(self.name, mode)

    @property
    def outage(self) -> Outage | None:
        return self._store.outage

    def compact_history(self) -> None:
        self._store.compact()

    def _obj(self, kind: str, namespace: str, name: str) -> Obj:
        return self._server.engine.find(self.name, kind, namespace, name)

    def fail(self, kind: str, namespace: str, name: str, fault: Fault) -> None:
        self._server.engine.fail(self._obj(kind, namespace, name), fault)

    def heal(self, kind: str, namespace: str, name: str) -> None:
        self._server.engine.heal(self._obj(kind, namespace, name))

    def reconcile(self, kind: str, namespace: str, name: str) -> None:
        """``flux reconcile``: stamps reconcile.fluxcd.io/requestedAt and runs the object soon;
        its status then echoes the stamp in lastHandledReconcileAt."""
        self._server.engine.request_reconcile(self._obj(kind, namespace, name))

    def suspend(self, kind: str, namespace: str, name: str) -> None:
        self._server.engine.suspend(self._obj(kind, namespace, name))

    def resume(self, kind: str, namespace: str, name: str) -> None:
        self._server.engine.resume(self._obj(kind, namespace, name))

    def watcher_count(self) -> int:
        return self._store.watcher_count()


class SimulatorServer:
    """Serves a scenario's fleet over HTTPS. Use as ``async with SimulatorServer(...) as sim``."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: Path,
        time_scale: float | None = None,
        watch_history: int = 10_000,
        bookmark_interval: float = 5.0,
        events_url: str | None = None,
        events_hmac_key: bytes | str | None = None,
        start_time: dt.datetime | None = None,
        kubeconfig_path: Path | None = None,
        wall_clock: bool = False,
    ) -> None:
        self.scenario = scenario
        self.host = host
        self.port = port
        self.state_dir = Path(state_dir)
        self.time_scale = time_scale
        self.bookmark_interval = bookmark_interval
        self.kubeconfig_path = kubeconfig_path or self.state_dir / "kubeconfig"
        self.ca_path = self.state_dir / "ca.crt"
        self.cluster_names = sorted(c.name for c in scenario.clusters)
        start = float(int(time.time())) if start_time is None else start_time.timestamp()
        self.stores = {
            c.name: ClusterStore(c.name, c.flux, frozenset(c.missing_groups), watch_history)
            for c in scenario.clusters
        }
        self.sink: EventSink | None = None
        if events_url:
            key = events_hmac_key.encode() if isinstance(events_hmac_key, str) else events_hmac_key
            self.sink = EventSink(events_url, key)
        if wall_clock and time_scale is None:
            raise ValueError("wall_clock needs a time_scale: the manual clock has no wall time")
        # With wall_clock the engine's clock keeps real time and the fleet's pace is scaled
        # instead, so every timestamp stays comparable with now (what a watcher computes ages
        # from); otherwise the simulated clock itself runs time_scale times faster.
        self.wall_clock = wall_clock
        self._clock_rate = 1.0 if wall_clock else (time_scale or 1.0)
        self.engine = Engine(
            scenario,
            self.stores,
            start,
            self.sink.offer if self.sink is not None else None,
            pace=(time_scale or 1.0) if wall_clock else 1.0,
        )
        self.tokens = {name: secrets.token_urlsafe(24) for name in self.cluster_names}
        self.base_url = ""
        self._server: HttpServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._clock_task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._engine_lock = asyncio.Lock()
        self.engine_errors = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> SimulatorServer:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        material = tls.generate(dt.datetime.now(dt.UTC), (self.host, "127.0.0.1", "localhost"))
        self.ca_path.write_bytes(material.ca_pem)
        ssl_context = tls.server_context(material, self.state_dir)
        app = web.Application(client_max_size=1024**2)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_route("*", "/clusters/{cluster}/{tail:.*}", self._dispatch)
        app.router.add_route("*", "/clusters/{cluster}", self._dispatch)
        self._server = HttpServer(
            app, self.host, self.port, name="simulator", ssl_context=ssl_context
        )
        await self._server.start()  # raises ListenError with nothing left open
        self.port = self._server.port  # the real port when 0 was asked for
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"https://{host}:{self.port}"
        self._write_kubeconfig(material.ca_pem)
        if self.sink is not None:
            await self.sink.start()
        self._tasks.append(asyncio.create_task(self._bookmarks(), name="simulator-bookmarks"))
        if self.time_scale is not None:
            self.start_clock(self._clock_rate)

    async def stop(self) -> None:
        await self.stop_clock()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for store in self.stores.values():
            for watcher in list(store.all_watchers()):
                watcher.close("end")
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self.sink is not None:
            await self.sink.close()

    def _write_kubeconfig(self, ca_pem: bytes) -> None:
        ca_data = base64.b64encode(ca_pem).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "current-context": self.cluster_names[0],
            "clusters": [
                {
                    "name": name,
                    "cluster": {
                        "server": f"{self.base_url}/clusters/{name}",
                        "certificate-authority-data": ca_data,
                    },
                }
                for name in self.cluster_names
            ],
            "users": [
                {"name": name, "user": {"token": self.tokens[name]}} for name in self.cluster_names
            ],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name}}
                for name in self.cluster_names
            ],
        }
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.kubeconfig_path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        os.replace(tmp, self.kubeconfig_path)

    # --- clock --------------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        """The simulated time."""
        return dt.datetime.fromtimestamp(self.engine.now, dt.UTC)

    async def advance(self, seconds: float) -> None:
        """Run the engine for ``seconds`` of simulated time, yielding to the event loop between
        batches so open watches stream the changes as they happen."""
        async with self._engine_lock:
            target = self.engine.now + seconds
            done = False
            while not done:
                done = self.engine.run_until(target, ENGINE_BUDGET)
                await asyncio.sleep(0)  # let watchers stream between batches
        await asyncio.sleep(0)

    def start_clock(self, rate: float) -> None:
        """Let the engine run by itself at ``rate`` simulated seconds per real second (what
        ``time_scale`` does at start; benchmarks also switch a manual server over)."""
        if self._clock_task is not None:
            raise RuntimeError("the clock is already running")
        self._clock_rate = rate
        self._clock_task = asyncio.create_task(self._clock(), name="simulator-clock")

    async def stop_clock(self) -> None:
        """Back to the manual clock: nothing changes until ``advance``."""
        task, self._clock_task = self._clock_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        origin_real = loop.time()
        origin_sim = self.engine.now
        while True:
            done = True
            async with self._engine_lock:
                target = origin_sim + (loop.time() - origin_real) * self._clock_rate
                try:
                    done = self.engine.run_until(max(target, self.engine.now), ENGINE_BUDGET)
                except Exception:
                    # One broken action must not freeze the fleet: log it, count it, go on.
                    self.engine_errors += 1
                    log.exception("scenario engine action failed")
            await asyncio.sleep(0 if not done else TICK)

    # --- control API --------------------------------------------------------------------

    def cluster(self, name: str) -> ClusterHandle:
        if name not in self.stores:
            raise KeyError(f"no cluster {name!r}; clusters: {', '.join(self.cluster_names)}")
        return ClusterHandle(self, self.stores[name])

    def new_commit(
        self, source_kind: str, namespace: str, name: str, clusters: list[str] | None = None
    ) -> str:
        """A new revision lands on that source in every (or the named) cluster, staggered;
        returns the revision string the sources will store."""
        return self.engine.new_commit(source_kind, namespace, name, clusters)

    def stats(self) -> dict[str, Any]:
        return {
            "clusters": len(self.stores),
            "objects": self.engine.object_count,
            "status_changes": self.engine.changes,
            "faults_injected": self.engine.faults_injected,
            "engine_errors": self.engine_errors,
            "watchers": sum(s.watcher_count() for s in self.stores.values()),
            "events_sent": self.sink.sent if self.sink else 0,
            "events_failed": self.sink.failed if self.sink else 0,
            "events_dropped": self.sink.dropped if self.sink else 0,
            "simulated_time": iso(self.engine.now),
        }

    # --- HTTP ---------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        store = self.stores.get(request.match_info["cluster"])
        if store is None:
            return _status_response(
                404, "NotFound", "the server could not find the requested resource"
            )
        if store.outage == "refuse":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if store.outage == "unavailable":
            return _status_response(
                503, "ServiceUnavailable", "the server is currently unable to handle the request"
            )
        header = request.headers.get("Authorization", "")
        expected = f"Bearer {self.tokens[store.name]}"
        if not hmac.compare_digest(header.encode(), expected.encode()):
            return _status_response(401, "Unauthorized", "Unauthorized")
        if request.method != "GET":
            return _status_response(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed: the simulator is read-only",
            )
        parts = [p for p in request.match_info.get("tail", "").split("/") if p]
        try:
            return await self._route(request, store, parts)
        except wire.SelectorError as exc:
            return _status_response(400, "BadRequest", str(exc))

    async def _route(
        self, request: web.Request, store: ClusterStore, parts: list[str]
    ) -> web.StreamResponse:
        not_found = _status_response(
            404, "NotFound", "the server could not find the requested resource"
        )
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if parts == ["version"]:
            return _json_response(wire.KUBE_VERSION)
        if parts == ["api"]:
            return _json_response(wire.api_versions())
        if parts == ["api", "v1"]:
            return _json_response(wire.core_resources())
        if not parts or parts[0] != "apis":
            return not_found
        served = wire.group_versions(store.profile, store.missing_groups)
        if len(parts) == 1:
            return _json_response(wire.api_group_list(store.profile, store.missing_groups))
        group = parts[1]
        if group not in served:
            return not_found
        if len(parts) == 2:
            return _json_response(wire.api_group(group, served[group]))
        version = parts[2]
        if version not in served[group]:
            return not_found
        kinds = [
            k
            for k in wire.served(store.missing_groups)
            if k.group == group and k.version_for(store.profile) == version
        ]
        if len(parts) == 3:
            return _json_response(wire.api_resource_list(group, version, kinds, store.profile))
        rest = parts[3:]
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        info = BY_PLURAL.get(rest[0])
        if info is None or info not in kinds:
            return not_found
        if len(rest) == 1:
            if wire.parse_bool(request.query.get("watch")):
                return await self._watch(request, store, info, namespace)
            return self._list(request, store, info, namespace)
        if (
            namespace is not None
            and len(rest) in (2, 3)
            and (len(rest) == 2 or rest[2] == "status")
        ):
            stored = store.get(info.kind, namespace, rest[1])
            if stored is None:
                return _json_response(
                    {
                        **wire.status_doc(
                            404, "NotFound", f'{info.plural}.{info.group} "{rest[1]}" not found'
                        ),
                        "details": {"name": rest[1], "group": info.group, "kind": info.plural},
                    },
                    404,
                )
            return web.Response(body=store.body(stored), content_type=JSON)
        return not_found

    def _selectors(
        self, request: web.Request
    ) -> tuple[tuple[wire.Requirement, ...], tuple[wire.Requirement, ...]]:
        labels = wire.parse_label_selector(request.query.get("labelSelector", ""))
        fields = wire.parse_field_selector(request.query.get("fieldSelector", ""))
        return labels, fields

    def _list(
        self, request: web.Request, store: ClusterStore, info: KindInfo, namespace: str | None
    ) -> web.Response:
        labels, fields = self._selectors(request)
        probe = Watcher(info.plural, namespace, labels, fields, False)
        query = request.query
        try:
            limit = int(query.get("limit", "0") or 0)
        except ValueError:
            return _status_response(400, "BadRequest", "limit must be an integer")
        list_rv = store.resource_version
        after: tuple[str, str] | None = None
        token = query.get("continue")
        if token:
            list_rv, ns, name = wire.decode_continue(token)
            if list_rv < store.floor:
                return _json_response(
                    wire.status_doc(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter.",
                    ),
                    410,
                )
            after = (ns, name)
        elif query.get("resourceVersion") not in (None, "", "0"):
            try:
                asked = int(query["resourceVersion"])
            except ValueError:
                return _status_response(400, "BadRequest", "resourceVersion must be an integer")
            match = query.get("resourceVersionMatch", "")
            if asked > store.resource_version:
                return _status_response(
                    504, "Timeout", f"Too large resource version: {asked}, current: {list_rv}"
                )
            if asked < store.floor or (match == "Exact" and asked != list_rv):
                # Only the newest state is kept, so older snapshots are gone.
                doc = wire.expired(asked, store.floor)
                return _json_response(doc, 410)
        matching: list[Stored] = [
            s
            for s in store.items(info.plural)
            if (after is None or (s.namespace, s.name) > after)
            and probe.wants(s.namespace, s.name, s.labels)
        ]
        page = matching[:limit] if limit > 0 else matching
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if limit > 0 and len(matching) > limit:
            last = page[-1]
            meta["continue"] = wire.encode_continue(list_rv, last.namespace, last.name)
            if not labels and not fields:
                meta["remainingItemCount"] = len(matching) - limit
        if wire.wants_table(request.headers.get("Accept", "")):
            objects = [store.decoded(s) for s in page]
            doc = wire.table(info, objects, meta, self.engine.now)
            return web.Response(body=wire.encode(doc), content_type=JSON)
        api_version = store.api_versions[info.kind]
        body = b"".join(
            [
                b'{"apiVersion":"',
                api_version,
                b'","items":[',
                b",".join(store.body(s) for s in page),
                b'],"kind":"',
                info.kind.encode(),
                b'List","metadata":',
                wire.encode(meta),
                b"}",
            ]
        )
        return web.Response(body=body, content_type=JSON)

    async def _watch(
        self, request: web.Request, store: ClusterStore, info: KindInfo, namespace: str | None
    ) -> web.StreamResponse:
        labels, fields = self._selectors(request)
        query = request.query
        bookmarks = wire.parse_bool(query.get("allowWatchBookmarks"))
        timeout: float | None = None
        if query.get("timeoutSeconds"):
            try:
                timeout = float(query["timeoutSeconds"])
            except ValueError:
                return _status_response(400, "BadRequest", "timeoutSeconds must be a number")
        since: int | None = None
        raw_rv = query.get("resourceVersion", "")
        if raw_rv not in ("", "0"):
            try:
                since = int(raw_rv)
            except ValueError:
                return _status_response(400, "BadRequest", "resourceVersion must be an integer")
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        watcher = Watcher(info.plural, namespace, labels, fields, bookmarks)
        initial = wire.parse_bool(query.get("sendInitialEvents"))
        try:
            # A streaming list (sendInitialEvents) starts with the current state like a
            # version-less watch, then marks its end with an annotated BOOKMARK.
            store.replay(watcher, None if initial else since)
            if initial:
                watcher.buf.append(self._bookmark_line(store, info, initial_end=True))
        except TooOld as exc:
            line = b'{"object":' + wire.encode(exc.status) + b',"type":"ERROR"}\n'
            with contextlib.suppress(ConnectionResetError):  # the client may already be gone
                await response.write(line)
                await response.write_eof()
            return response
        store.add_watcher(watcher)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                if watcher.buf:
                    data = b"".join(watcher.buf)
                    watcher.buf.clear()
                    await response.write(data)
                    continue
                if watcher.closing is not None:
                    break
                watcher.wake.clear()
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await watcher.wake.wait()
                except TimeoutError:
                    break
        except ConnectionResetError:
            # The client went away (aiohttp's ClientConnectionResetError is one): normal end.
            return response
        finally:
            store.remove_watcher(watcher)
        if watcher.closing == "abort":
            if request.transport is not None:
                request.transport.abort()
            return response
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _bookmarks(self) -> None:
        while True:
            await asyncio.sleep(self.bookmark_interval)
            for store in self.stores.values():
                lines: dict[str, bytes] = {}
                for watcher in list(store.all_watchers()):
                    if not watcher.bookmarks or watcher.closing is not None:
                        continue
                    line = lines.get(watcher.plural)
                    if line is None:
                        line = self._bookmark_line(store, BY_PLURAL[watcher.plural])
                        lines[watcher.plural] = line
                    watcher.push(line)

    @staticmethod
    def _bookmark_line(store: ClusterStore, info: KindInfo, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(store.resource_version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {
            "apiVersion": store.api_versions[info.kind].decode(),
            "kind": info.kind,
            "metadata": meta,
        }
        return b'{"object":' + wire.encode(obj) + b',"type":"BOOKMARK"}\n'
