"""Gitea and Forgejo commit statuses (``type: gitea``).

``POST {base_url}/api/v1/repos/{owner}/{repo}/statuses/{sha}`` with ``state`` (``pending``,
``success``, ``failure``, ``error``), ``context``, ``description`` and ``target_url``; header
``Authorization: token <token>`` (an access token with ``write:repository``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from notifiers.providers.base import OutboundRequest, ResponseCase
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    HostApiDefaults,
    RepoRef,
    github_style_body,
    json_request,
    url_segments,
)

MAX_DESCRIPTION = 255


class GiteaApi(HostApiDefaults):
    name = "gitea"
    default_base_url = "https://gitea.com"
    default_hosts: tuple[str, ...] = ("gitea.com",)
    max_description = MAX_DESCRIPTION

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        owner, name = url_segments(repo)
        return json_request(
            f"{options.base_url}/api/v1/repos/{owner}/{name}/statuses/{status.sha}",
            {"Authorization": f"token {options.token}"},
            github_style_body(status, MAX_DESCRIPTION),
            "create commit status",
        )

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found = []
        for r in requests:
            body = json.loads(r.body)
            if body.get("state") not in ("pending", "success", "error", "failure", "warning"):
                found.append(f"state {body.get('state')!r}")
            if len(body.get("description", "")) > MAX_DESCRIPTION:
                found.append("description too long")
        return found


API = GiteaApi()
TYPE = CommitStatusType(
    API,
    "acme/podinfo",
    [ResponseCase("422 invalid", 422, "fail", body=b'{"message":"invalid state"}')],
)
