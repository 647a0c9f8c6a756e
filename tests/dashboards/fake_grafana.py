"""A local stand-in for Grafana's HTTP API (folders and dashboards), enforcing the request
shapes and errors of the real one: bearer token (401), JSON bodies (400), the 40-character
UID limit, unknown folders (404 on GET, 400 on save), and optimistic locking on save (412
``version-mismatch`` when the version sent is not the stored one, ``name-exists`` for a
second dashboard with the same title in a folder)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BODY = web.RequestKey("body", dict[str, Any])


@dataclass
class FakeGrafana:
    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> folder
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> stored
    requests: list[tuple[str, str]] = field(default_factory=list)
    edit_after_read: set[str] = field(default_factory=set)  # someone saves right after our read
    url: str = ""
    _ids: int = 0

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_folder(self, uid: str, title: str) -> None:
        self.folders[uid] = {"id": self._next_id(), "uid": uid, "title": title, "version": 1}

    def add_dashboard(self, board: dict[str, Any], folder_uid: str, version: int = 1) -> None:
        stored = dict(board, id=self._next_id(), version=version)
        self.dashboards[board["uid"]] = {"dashboard": stored, "folderUid": folder_uid}

    @staticmethod
    def _error(code: int, message: str, **extra: str) -> web.Response:
        return web.json_response({"message": message, **extra}, status=code)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "Unauthorized")
        if request.method == "POST":
            if request.content_type != "application/json":
                return self._error(415, "Unsupported Media Type")
            try:
                body = json.loads(await request.read())
            except ValueError:
                return self._error(400, "bad request data")
            if not isinstance(body, dict):
                return self._error(400, "bad request data")
            request[BODY] = body
        response: web.StreamResponse = await handler(request)
        return response

    async def list_folders(self, request: web.Request) -> web.Response:
        return web.json_response(sorted(self.folders.values(), key=lambda f: f["id"]))

    async def get_folder(self, request: web.Request) -> web.Response:
        folder = self.folders.get(request.match_info["uid"])
        if folder is None:
            return self._error(404, "folder not found", status="not-found")
        return web.json_response(folder)

    async def create_folder(self, request: web.Request) -> web.Response:
        title = request[BODY].get("title")
        if not isinstance(title, str) or not title:
            return self._error(400, "folder title cannot be empty")
        if any(f["title"] == title for f in self.folders.values()):
            return self._error(409, "a folder with the same name already exists")
        uid = request[BODY].get("uid") or f"f{self._ids + 1:09d}"
        self.add_folder(uid, title)
        return web.json_response(self.folders[uid])

    async def get_dashboard(self, request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        stored = self.dashboards.get(uid)
        if stored is None:
            return self._error(404, "Dashboard not found")
        board = stored["dashboard"]
        doc = {
            "dashboard": board,
            "meta": {"folderUid": stored["folderUid"], "version": board["version"], "slug": uid},
        }
        if uid in self.edit_after_read:
            self.edit_after_read.discard(uid)
            stored["dashboard"] = dict(board, version=board["version"] + 1, title="edited by hand")
        return web.json_response(doc)

    async def save_dashboard(self, request: web.Request) -> web.Response:
        body = request[BODY]
        board = body.get("dashboard")
        if not isinstance(board, dict):
            return self._error(400, "bad request data")
        if not board.get("title"):
            return self._error(400, "Dashboard title cannot be empty")
        uid = board.get("uid")
        if not isinstance(uid, str) or not uid or len(uid) > 40:
            return self._error(400, "uid too long, max 40 characters")
        folder_uid = body.get("folderUid", "")
        if folder_uid and folder_uid not in self.folders:
            return self._error(400, "folder not found")
        overwrite = body.get("overwrite") is True
        existing = self.dashboards.get(uid)
        for other_uid, other in self.dashboards.items():
            same_place = other["folderUid"] == folder_uid
            if other_uid != uid and same_place and other["dashboard"]["title"] == board["title"]:
                return self._error(
                    412,
                    "A dashboard with the same name in the folder already exists",
                    status="name-exists",
                )
        stale = existing is not None and board.get("version") != existing["dashboard"]["version"]
        if stale and not overwrite:
            return self._error(
                412, "The dashboard has been changed by someone else", status="version-mismatch"
            )
        version = (existing["dashboard"]["version"] + 1) if existing else 1
        ident = existing["dashboard"]["id"] if existing else self._next_id()
        self.dashboards[uid] = {
            "dashboard": dict(board, id=ident, version=version),
            "folderUid": folder_uid,
        }
        return web.json_response(
            {
                "id": ident,
                "uid": uid,
                "url": f"/d/{uid}/{uid}",
                "status": "success",
                "version": version,
                "slug": uid,
            }
        )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/folders", self.list_folders)
        app.router.add_post("/api/folders", self.create_folder)
        app.router.add_get("/api/folders/{uid}", self.get_folder)
        app.router.add_get("/api/dashboards/uid/{uid}", self.get_dashboard)
        app.router.add_post("/api/dashboards/db", self.save_dashboard)
        return app


@contextmanager
def serving(grafana: FakeGrafana) -> Iterator[FakeGrafana]:
    """Serve ``grafana`` on 127.0.0.1 from a thread of its own, so a CLI under test (which runs
    its own event loop) can talk to it."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(grafana.app())
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        host, port = runner.addresses[0][:2]
        grafana.url = f"http://{host}:{port}"
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "the fake Grafana did not start"
    try:
        yield grafana
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
