"""Azure DevOps Git commit statuses (``type: azure_devops``), Services or Server.

``POST {base_url}/{org}/{project}/_apis/git/repositories/{repo}/commits/{sha}/statuses
?api-version=7.1`` with ``state`` (``pending``, ``succeeded``, ``failed``, ``error``),
``context {genre, name}`` (branch policies can require a status by genre and name),
``description`` and ``targetUrl``. Auth: a personal access token with ``Code (status)``, sent
as basic auth with an empty user. A bad or expired token is answered ``203`` with the HTML
sign-in page rather than 401: that is a permanent failure, not a success.
Repositories come from ``https://dev.azure.com/{org}/{project}/_git/{repo}``,
``https://{org}.visualstudio.com/{project}/_git/{repo}`` or
``git@ssh.dev.azure.com:v3/{org}/{project}/{repo}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from notifiers.configkit import str_
from notifiers.http import HttpResponse
from notifiers.model import Fail, Outcome
from notifiers.providers.base import OutboundRequest, ResponseCase
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    HostApiDefaults,
    RepoRef,
    classify_common,
    json_request,
    url_segments,
)

STATES = {"pending": "pending", "success": "succeeded", "failure": "failed", "error": "error"}
MAX_DESCRIPTION = 1024
API_VERSION = "7.1"


class AzureDevOpsApi(HostApiDefaults):
    name = "azure_devops"
    default_base_url = "https://dev.azure.com"
    default_hosts: tuple[str, ...] = ("dev.azure.com", "ssh.dev.azure.com", "*.visualstudio.com")
    max_description = MAX_DESCRIPTION
    extra_keys: tuple[str, ...] = ("genre",)

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        if host.endswith(".visualstudio.com") and len(path) == 3 and path[1] == "_git":
            return RepoRef(host, (host.split(".")[0], path[0], path[2]))
        if len(path) == 4 and path[2] == "_git":  # dev.azure.com/org/project/_git/repo
            return RepoRef(host, (path[0], path[1], path[3]))
        if len(path) == 4 and path[0] == "v3":  # ssh.dev.azure.com:v3/org/project/repo
            return RepoRef(host, path[1:])
        if len(path) == 3 and "_git" not in path:  # the repository override: org/project/repo
            return RepoRef(host, path)
        return None

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        org, project, name = url_segments(repo)
        body: dict[str, Any] = {
            "state": STATES[status.state],
            "description": status.description[:MAX_DESCRIPTION],
            "context": {"genre": options.extra.get("genre", "fluxwatch"), "name": status.context},
        }
        if status.target_url:
            body["targetUrl"] = status.target_url
        pat = base64.b64encode(f":{options.token}".encode()).decode()
        return json_request(
            f"{options.base_url}/{org}/{project}/_apis/git/repositories/{name}/commits/"
            f"{status.sha}/statuses?api-version={API_VERSION}",
            {"Authorization": f"Basic {pat}"},
            body,
            "create commit status",
        )

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        if response.status == 203 or b"<html" in response.body[:200].lower():
            return Fail(
                f"HTTP {response.status}: Azure DevOps answered its sign-in page; the personal "
                "access token is invalid, expired or lacks Code (status)",
                response.status,
            )
        return classify_common(response, now)

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found = []
        for r in requests:
            body = json.loads(r.body)
            if body.get("state") not in STATES.values():
                found.append(f"state {body.get('state')!r}")
            if not body.get("context", {}).get("name"):
                found.append("context.name missing")
            if len(body.get("description", "")) > MAX_DESCRIPTION:
                found.append("description too long")
        return found

    def parse_extra(self, raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        return {"genre": str_(raw.get("genre"), f"{path}.genre", default="fluxwatch")}


API = AzureDevOpsApi()
TYPE = CommitStatusType(
    API,
    "acme/platform/podinfo",
    [
        ResponseCase(
            "203 sign-in page",
            203,
            "fail",
            body=b"<html><head><title>Azure DevOps Services | Sign In</title></head></html>",
        )
    ],
)
