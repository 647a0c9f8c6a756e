"""The HTTPS server: N virtual kube-apiservers on one port, one per ``/clusters/<name>`` prefix.

It owns the lifecycle (TLS, kubeconfig, the clock driving the engine), checks each request's
cluster, outage and token before handing it to ``simulator.kubeapi`` (the read side of the
Kubernetes API), and exposes a control API for tests (``SimulatorServer.cluster(name)``).
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
from simulator.kinds import BY_KIND, BY_PLURAL
from simulator.kubeapi import bookmark_line, route, status_response
from simulator.model import Obj, iso
from simulator.scenario import Fault, Scenario
from simulator.store import ClusterStore, Outage

log = logging.getLogger("simulator.server")

# How much engine work runs between two yields to the event loop, so watchers keep streaming
# while a large ``advance`` or a fast time scale is being processed.
ENGINE_BUDGET = 2_000
TICK = 0.05


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
            return status_response(
                404, "NotFound", "the server could not find the requested resource"
            )
        if store.outage == "refuse":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        if store.outage == "unavailable":
            return status_response(
                503, "ServiceUnavailable", "the server is currently unable to handle the request"
            )
        header = request.headers.get("Authorization", "")
        expected = f"Bearer {self.tokens[store.name]}"
        if not hmac.compare_digest(header.encode(), expected.encode()):
            return status_response(401, "Unauthorized", "Unauthorized")
        if request.method != "GET":
            return status_response(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed: the simulator is read-only",
            )
        parts = [p for p in request.match_info.get("tail", "").split("/") if p]
        try:
            return await route(request, store, parts, self.engine.now)
        except wire.SelectorError as exc:
            return status_response(400, "BadRequest", str(exc))

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
                        line = bookmark_line(store, BY_PLURAL[watcher.plural])
                        lines[watcher.plural] = line
                    watcher.push(line)
