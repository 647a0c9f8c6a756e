"""GitLab commit statuses (``type: gitlab``), gitlab.com or self-managed.

``POST {base_url}/api/v4/projects/{url-encoded namespace/project}/statuses/{sha}`` with
``state`` (``running`` while rolling out, ``success``, ``failed``), ``name`` (the context),
``description`` and ``target_url``; header ``PRIVATE-TOKEN`` (a project or personal access
token with the ``api`` scope, role Developer or more). Subgroups are part of the path. GitLab
refuses some state transitions with ``400 Cannot transition status via :run from :running``:
the status is already what we asked for, so that answer counts as done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from notifiers.http import HttpResponse
from notifiers.model import Ok, Outcome
from notifiers.providers.base import OutboundRequest, ResponseCase
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    HostApiDefaults,
    RepoRef,
    classify_common,
    json_request,
)

STATES = {"pending": "running", "success": "success", "failure": "failed", "error": "failed"}
MAX_DESCRIPTION = 255


class GitLabApi(HostApiDefaults):  # no documented cap on statuses per context
    name = "gitlab"
    default_base_url = "https://gitlab.com"
    default_hosts: tuple[str, ...] = ("gitlab.com",)
    max_description = MAX_DESCRIPTION

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        if len(path) < 2 or "-" in path:
            return None
        return RepoRef(host, path)

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        project = quote("/".join(repo.path), safe="")
        body: dict[str, Any] = {
            "state": STATES[status.state],
            "name": status.context,
            "description": status.description[:MAX_DESCRIPTION],
        }
        if status.target_url:
            body["target_url"] = status.target_url
        return json_request(
            f"{options.base_url}/api/v4/projects/{project}/statuses/{status.sha}",
            {"PRIVATE-TOKEN": options.token},
            body,
            "create commit status",
        )

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        if response.status == 400 and b"Cannot transition status" in response.body:
            return Ok("GitLab already shows this state")
        return classify_common(response, now)

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found: list[str] = []
        for r in requests:
            body = json.loads(r.body)
            if len(body.get("description", "")) > MAX_DESCRIPTION:
                found.append(f"description over {MAX_DESCRIPTION} characters")
            if body.get("state") not in ("pending", "running", "success", "failed", "canceled"):
                found.append(f"state {body.get('state')!r}")
            if len(body.get("name", "")) > self.max_context:
                found.append("name too long")
        return found


API = GitLabApi()
TYPE = CommitStatusType(
    API,
    "acme/platform/podinfo",
    [
        ResponseCase(
            "400 refused transition",
            400,
            "ok",
            body=b'{"message":"Cannot transition status via :run from :running (Reason(s): '
            b'Status cannot transition via \\"run\\".)"}',
        ),
        ResponseCase("400 other", 400, "fail", body=b'{"message":"400 Bad request"}'),
    ],
)
