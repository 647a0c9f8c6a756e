"""Upload the dashboards through Grafana's HTTP API, touching only the dashboards fluxwatch owns.

fluxwatch owns a dashboard when its UID is one it generates and it carries the ``fluxwatch``
tag; a dashboard at one of those UIDs without the tag was made by someone else and is left
alone (reported as a conflict). Updates send the version Grafana holds, without ``overwrite``,
so an edit made in Grafana since the read is refused (412) instead of silently replaced.

``plan`` and ``changes`` are pure; ``GrafanaClient`` is the thin HTTP edge (aiohttp).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

OWNER_TAG = "fluxwatch"
VOLATILE = ("id", "version")  # fields Grafana sets on save

Action = Literal["create", "update", "unchanged", "conflict"]


class GrafanaError(Exception):
    """Grafana refused a request; ``status`` is its HTTP status, ``message`` what it said."""

    def __init__(self, status: int, message: str, what: str) -> None:
        super().__init__(f"{what}: Grafana answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Stored:
    """A dashboard as Grafana holds it."""

    dashboard: dict[str, Any]
    version: int
    folder_uid: str


@dataclass(frozen=True)
class Step:
    uid: str
    action: Action
    changes: tuple[str, ...] = ()
    version: int | None = None  # the stored version an update is based on


def owned(stored: Mapping[str, Any]) -> bool:
    return OWNER_TAG in stored.get("tags", [])


def _comparable(board: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in board.items() if k not in VOLATILE}


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """What an update changes, in words: panels added, removed or changed (by title), and the
    other top-level fields that differ."""
    out: list[str] = []
    before = {p.get("title", ""): p for p in old.get("panels", [])}
    after = {p.get("title", ""): p for p in new.get("panels", [])}
    out += [f"panel added: {t}" for t in sorted(after.keys() - before.keys())]
    out += [f"panel removed: {t}" for t in sorted(before.keys() - after.keys())]
    out += [
        f"panel changed: {t}"
        for t in sorted(before.keys() & after.keys())
        if _comparable(before[t]) != _comparable(after[t])
    ]
    for key in sorted((old.keys() | new.keys()) - {"panels", *VOLATILE}):
        if old.get(key) != new.get(key):
            out.append(f"{key} changed")
    return tuple(out)


def plan(
    generated: Mapping[str, Mapping[str, Any]], stored: Mapping[str, Stored | None], folder_uid: str
) -> list[Step]:
    """What to do with each generated dashboard, given what Grafana holds at its UID."""
    steps: list[Step] = []
    for uid, board in generated.items():
        have = stored.get(uid)
        if have is None:
            steps.append(Step(uid, "create"))
        elif not owned(have.dashboard):
            steps.append(Step(uid, "conflict", ("exists and is not managed by fluxwatch",)))
        else:
            diff = changes(_comparable(have.dashboard), _comparable(board))
            if have.folder_uid != folder_uid:
                diff = ("moved to the folder", *diff)
            steps.append(Step(uid, "update" if diff else "unchanged", diff, have.version))
    return steps


def upload_body(
    board: Mapping[str, Any], folder_uid: str, base: Stored | None, message: str
) -> dict[str, Any]:
    """``POST /api/dashboards/db``: a new dashboard has no id; an update carries the stored
    id and version so a concurrent edit in Grafana makes it fail with 412."""
    dashboard = dict(board)
    dashboard["id"] = base.dashboard.get("id") if base else None
    if base is not None:
        dashboard["version"] = base.version
    else:
        dashboard.pop("version", None)
    return {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": False, "message": message}


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # uid, why

    def lines(self) -> list[str]:
        out = []
        for s in self.steps:
            detail = f" ({'; '.join(s.changes)})" if s.changes else ""
            out.append(f"{s.action:9} {s.uid}{detail}")
        out += [f"failed    {uid}: {why}" for uid, why in self.failed]
        return out


class GrafanaClient:
    """The few Grafana HTTP API calls a push needs, with the token as a bearer token."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def __repr__(self) -> str:  # never show the token
        return f"GrafanaClient({self.url!r})"

    async def _call(self, method: str, path: str, what: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body, sort_keys=True)
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.request(method, self.url + path, data=data, headers=headers) as resp:
            text = await resp.text()
            try:
                doc = json.loads(text) if text else None
            except ValueError:
                doc = None
            if resp.status >= 400:
                message = doc.get("message", "") if isinstance(doc, dict) else text[:200]
                raise GrafanaError(resp.status, str(message), what)
            return doc

    async def folder_by_uid(self, uid: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call("GET", f"/api/folders/{uid}", f"folder {uid}")
        return found

    async def folder_by_title(self, title: str) -> str:
        """The UID of the folder titled ``title``, created when there is none."""
        folders = await self._call("GET", "/api/folders?limit=1000", "list folders")
        for folder in folders or []:
            if folder.get("title") == title:
                uid: str = folder["uid"]
                return uid
        created = await self._call(
            "POST", "/api/folders", f"create folder {title}", {"title": title}
        )
        new_uid: str = created["uid"]
        return new_uid

    async def stored(self, uid: str) -> Stored | None:
        try:
            doc = await self._call("GET", f"/api/dashboards/uid/{uid}", f"read {uid}")
        except GrafanaError as err:
            if err.status == 404:
                return None
            raise
        meta = doc.get("meta", {})
        return Stored(doc["dashboard"], int(meta.get("version", 0)), str(meta.get("folderUid", "")))

    async def upload(self, body: dict[str, Any], uid: str) -> dict[str, Any]:
        done: dict[str, Any] = await self._call("POST", "/api/dashboards/db", f"upload {uid}", body)
        return done


async def push(
    client: GrafanaClient,
    generated: Mapping[str, Mapping[str, Any]],
    folder_uid: str,
    message: str = "fluxwatch dashboards push",
) -> Report:
    """Create or update every generated dashboard fluxwatch owns; report each step.

    A 401 or 403 ends the push (raised); a refused upload (412 changed in Grafana meanwhile,
    400) is reported for that dashboard and the others still go up.
    """
    stored = {uid: await client.stored(uid) for uid in generated}
    report = Report()
    for step in plan(generated, stored, folder_uid):
        if step.action in ("create", "update"):
            body = upload_body(generated[step.uid], folder_uid, stored[step.uid], message)
            try:
                await client.upload(body, step.uid)
            except GrafanaError as err:
                if err.status in (401, 403):
                    raise
                report.failed.append((step.uid, f"{err.status} {err.message}"))
                continue
        report.steps.append(step)
    return report
