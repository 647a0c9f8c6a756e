"""Gitea and Forgejo commit statuses (``type: gitea``).

``POST {base_url}/api/v1/repos/{owner}/{repo}/statuses/{sha}`` with ``state`` (``pending``,
``success``, ``failure``, ``error``), ``context``, ``description`` and ``target_url``; header
``Authorization: token <token>`` (an access token with ``write:repository``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from notifiers.http import HttpResponse
from notifiers.model import Outcome
from notifiers.providers.base import OutboundRequest, ResponseCase
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    RepoRef,
    classify_common,
)

MAX_DESCRIPTION = 255


class GiteaApi:
    name = "gitea"
    default_base_url = "https://gitea.com"
    default_hosts: tuple[str, ...] = ("gitea.com",)
    max_context = 255
    max_description = MAX_DESCRIPTION
    max_posts_per_context = 0
    extra_keys: tuple[str, ...] = ()

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        return RepoRef(host, path) if len(path) == 2 else None

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        owner, name = (quote(p, safe="") for p in repo.path)
        body: dict[str, Any] = {
            "state": status.state,
            "context": status.context,
            "description": status.description[:MAX_DESCRIPTION],
        }
        if status.target_url:
            body["target_url"] = status.target_url
        return OutboundRequest(
            url=f"{options.base_url}/api/v1/repos/{owner}/{name}/statuses/{status.sha}",
            headers={"Authorization": f"token {options.token}", "Content-Type": "application/json"},
            body=json.dumps(body, sort_keys=True, ensure_ascii=False).encode(),
            purpose="create commit status",
        )

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        return classify_common(response, now)

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found = []
        for r in requests:
            body = json.loads(r.body)
            if body.get("state") not in ("pending", "success", "error", "failure", "warning"):
                found.append(f"state {body.get('state')!r}")
            if len(body.get("description", "")) > MAX_DESCRIPTION:
                found.append("description too long")
        return found

    def parse_extra(self, raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        return {}


API = GiteaApi()
TYPE = CommitStatusType(
    API,
    "acme/podinfo",
    [ResponseCase("422 invalid", 422, "fail", body=b'{"message":"invalid state"}')],
)
