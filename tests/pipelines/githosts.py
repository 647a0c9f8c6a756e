"""Local fake Git hosts enforcing the commit-status APIs' real limits and error shapes.

Each is a real aiohttp server on 127.0.0.1 (notify-apis.md §3): GitHub answers 422 with its
validation error body to a description over 140 characters or the 1,001st status of a commit and
context, 401 ``Bad credentials`` and 403 ``Resource not accessible`` for tokens; GitLab refuses a
repeated transition with its 400 text; Bitbucket answers 401 to a bad token; Azure DevOps
answers 203 with an HTML sign-in page. ``throttle_next`` makes the next request a 429 with
``Retry-After``.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeGitHost:
    token: str
    readonly_token: str = "readonly-token"
    posts: list[Posted] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    throttle_next: int = 0
    retry_after: str = "1"
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def statuses(self, sha: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Per context (name/key), every status body posted, oldest first."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for post in self.posts:
            if sha is None or sha in post.path:
                out[self.context_of(post.body)].append(post.body)
        return dict(out)

    def context_of(self, body: dict[str, Any]) -> str:
        return str(body.get("context") or body.get("name") or body.get("key") or "")

    async def start(self) -> FakeGitHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._entry)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _entry(self, request: web.Request) -> web.StreamResponse:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            self.refused.append((429, request.path))
            return web.json_response(
                {"message": "slow down"}, status=429, headers={"Retry-After": self.retry_after}
            )
        response = await self.handle(request)
        if response.status >= 300:
            self.refused.append((response.status, request.raw_path))
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError


class FakeGitHub(FakeGitHost):
    MAX_PER_CONTEXT = 1000

    async def handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        parts = request.path.strip("/").split("/")
        if (
            request.method != "POST"
            or len(parts) != 5
            or parts[0] != "repos"
            or parts[3] != "statuses"
        ):
            return web.json_response({"message": "Not Found"}, status=404)
        if auth == f"Bearer {self.readonly_token}":
            return web.json_response(
                {
                    "message": "Resource not accessible by personal access token",
                    "documentation_url": "https://docs.github.com/rest/commits/statuses",
                },
                status=403,
            )
        if auth != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials"}, status=401)
        body = json.loads(await request.read())
        errors = []
        if body.get("state") not in ("error", "failure", "pending", "success"):
            errors.append({"resource": "Status", "field": "state", "code": "invalid"})
        if len(body.get("description") or "") > 140:
            errors.append(
                {
                    "resource": "Status",
                    "code": "custom",
                    "field": "description",
                    "message": "description is too long (maximum is 140 characters)",
                }
            )
        context = str(body.get("context") or "default").lower()
        sha = parts[4]
        same = sum(
            1
            for p in self.posts
            if p.path.endswith(sha) and str(p.body.get("context") or "default").lower() == context
        )
        if same >= self.MAX_PER_CONTEXT:
            errors.append(
                {
                    "resource": "Status",
                    "code": "custom",
                    "message": "This SHA and context has reached the maximum number of statuses.",
                }
            )
        if errors:
            return web.json_response(
                {
                    "message": "Validation Failed",
                    "errors": errors,
                    "documentation_url": "https://docs.github.com/rest/commits/statuses",
                },
                status=422,
            )
        self.posts.append(Posted(request.path, dict(request.headers), body))
        return web.json_response({"id": len(self.posts), **body}, status=201)


class FakeGitLab(FakeGitHost):
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("PRIVATE-TOKEN") != self.token:
            return web.json_response({"message": "401 Unauthorized"}, status=401)
        # The project id is the URL-encoded namespace path: split the raw path, not the decoded.
        parts = request.raw_path.split("?")[0].strip("/").split("/")
        if (
            request.method != "POST"
            or len(parts) != 6
            or parts[:3] != ["api", "v4", "projects"]
            or parts[4] != "statuses"
        ):
            return web.json_response({"error": "404 Not Found"}, status=404)
        body = json.loads(await request.read())
        if body.get("state") not in ("pending", "running", "success", "failed", "canceled"):
            return web.json_response({"error": "state does not have a valid value"}, status=400)
        name = body.get("name") or "default"
        previous = [
            p for p in self.posts if p.path == request.raw_path and p.body.get("name") == name
        ]
        if previous and previous[-1].body["state"] == body["state"] == "running":
            return web.json_response(
                {
                    "message": "Cannot transition status via :run from :running (Reason(s): "
                    'Status cannot transition via "run".)'
                },
                status=400,
            )
        self.posts.append(Posted(request.raw_path, dict(request.headers), body))
        return web.json_response({"id": len(self.posts), "status": body["state"]}, status=201)


class FakeGitea(FakeGitHost):
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"token {self.token}":
            return web.json_response({"message": "token is required"}, status=401)
        body = json.loads(await request.read())
        if body.get("state") not in ("pending", "success", "error", "failure", "warning"):
            return web.json_response({"message": "invalid state"}, status=422)
        self.posts.append(Posted(request.path, dict(request.headers), body))
        return web.json_response(body, status=201)


class FakeBitbucketCloud(FakeGitHost):
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"type": "error", "error": {"message": "Access token expired."}}, status=401
            )
        body = json.loads(await request.read())
        if len(body.get("key", "")) > 40 or not body.get("url"):
            return web.json_response(
                {"type": "error", "error": {"message": "key or url invalid"}}, status=400
            )
        if body.get("state") not in ("INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"):
            return web.json_response({"type": "error", "error": {"message": "state"}}, status=400)
        self.posts.append(Posted(request.path, dict(request.headers), body))
        return web.json_response(body, status=201)


class FakeBitbucketServer(FakeGitHost):
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"errors": [{"message": "Authentication failed. Please check your credentials."}]},
                status=401,
            )
        body = json.loads(await request.read())
        if body.get("state") not in ("INPROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED", "UNKNOWN"):
            return web.json_response({"errors": [{"message": "state"}]}, status=400)
        self.posts.append(Posted(request.path, dict(request.headers), body))
        return web.Response(status=204)


class FakeAzureDevOps(FakeGitHost):
    async def handle(self, request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f":{self.token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            # Azure DevOps answers a bad PAT with a 203 and its HTML sign-in page.
            return web.Response(
                status=203,
                text="<html><head><title>Azure DevOps Services | Sign In</title></head></html>",
                content_type="text/html",
            )
        body = json.loads(await request.read())
        if body.get("state") not in (
            "notSet",
            "pending",
            "succeeded",
            "failed",
            "error",
            "notApplicable",
        ):
            return web.json_response({"message": "state"}, status=400)
        self.posts.append(Posted(request.path, dict(request.headers), body))
        return web.json_response(body, status=201)
