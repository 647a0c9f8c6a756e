"""An API-server front that enforces RBAC rules, for proving the exporter needs no more.

Sits between the exporter and the simulator (which serves everything to any valid token) and
authorizes each request as the Kubernetes API server would for a service account bound to the
given rules in one namespace, plus the `system:discovery` role every authenticated user has.
Allowed requests are proxied, streams included; denied ones get the API server's 403 Status and
are recorded.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

# system:discovery / system:public-info-viewer: non-resource URLs open to every user.
DISCOVERY = ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz", "/openapi")


@dataclass(frozen=True)
class Grant:
    """One RBAC rule of a Role bound in ``namespace`` ("" for a ClusterRole binding)."""

    namespace: str
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]


def grants_of(objects: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[Grant]:
    """The rules of every bound Role/ClusterRole among rendered objects."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"].endswith("Role")}
    grants: list[Grant] = []
    for binding in objects:
        if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        namespace = (
            binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
        )
        for rule in role["rules"]:
            grants.append(
                Grant(
                    namespace,
                    frozenset(rule["apiGroups"]),
                    frozenset(rule["resources"]),
                    frozenset(rule["verbs"]),
                )
            )
    return grants


def _is_discovery(parts: list[str]) -> bool:
    if not parts:
        return False
    if parts[0] == "api":
        return len(parts) <= 2  # /api, /api/v1
    if parts[0] == "apis":
        return len(parts) <= 3  # /apis, /apis/<group>, /apis/<group>/<version>
    return "/" + parts[0] in DISCOVERY


def authorize(method: str, path: str, query: dict[str, str], grants: list[Grant]) -> bool:
    """Whether the API server would allow this request (path without the /clusters/x prefix)."""
    if method != "GET":
        return False  # every grant here is read-only; writes would need create/update/...
    parts = [p for p in path.split("/") if p]
    if _is_discovery(parts):
        return True
    if parts[:1] != ["apis"] or len(parts) < 4:
        return False
    group, rest = parts[1], parts[3:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    if len(rest) == 1:
        verb = "watch" if query.get("watch") in {"true", "1"} else "list"
    elif len(rest) == 2:
        verb = "get"
    else:
        resource, verb = f"{rest[0]}/{rest[2]}", "get"  # a subresource
    return any(
        (grant.namespace == "" or grant.namespace == namespace)
        and group in grant.groups
        and resource in grant.resources
        and verb in grant.verbs
        for grant in grants
    )


@dataclass
class RbacProxy:
    upstream: str  # the simulator's base URL
    ca_file: Path
    grants: list[Grant]
    denied: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RbacProxy:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context), auto_decompress=False
        )
        app = web.Application()
        app.router.add_route("*", "/clusters/{cluster}/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        tail = "/" + request.match_info["tail"]
        line = f"{request.method} {tail}?{request.query_string}"
        if not authorize(request.method, tail, dict(request.query), self.grants):
            self.denied.append(line)
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "Forbidden",
                    "code": 403,
                    "message": f"forbidden: {line}",
                },
                status=403,
            )
        self.allowed.append(line)
        assert self._session is not None
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in {"host", "accept-encoding"}
        }
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in {"content-length", "transfer-encoding", "connection"}:
                    response.headers[key] = value
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    def kubeconfig(self, simulator_kubeconfig: Path, into: Path) -> Path:
        """The simulator's kubeconfig with every cluster's server pointed at this proxy."""
        config = yaml.safe_load(simulator_kubeconfig.read_text())
        for cluster in config["clusters"]:
            name = cluster["name"]
            cluster["cluster"] = {"server": f"{self.url}/clusters/{name}"}
        into.write_text(yaml.safe_dump(config))
        return into
