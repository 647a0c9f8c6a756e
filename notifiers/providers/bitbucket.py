"""Bitbucket Cloud build statuses (``type: bitbucket``).

``POST {base_url}/2.0/repositories/{workspace}/{repo_slug}/commit/{sha}/statuses/build`` with
``key`` (at most 40 characters; the same key overwrites, so per-cluster keys never collide: long
contexts are shortened with a hash), ``state`` (``INPROGRESS``, ``SUCCESSFUL``, ``FAILED``),
``name`` (the full context), ``description`` and ``url`` (required: ``target_url``, else the
commit's page). Auth: a repository or workspace access token (``Bearer``) with
``repository:write``, or ``username`` plus an app password (basic auth).
"""

from __future__ import annotations

import base64
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
    shorten,
)

STATES = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED", "error": "FAILED"}
MAX_KEY = 40
MAX_NAME = 255
MAX_DESCRIPTION = 255


def auth_header(options: CommitStatusOptions) -> str:
    if options.username:
        pair = base64.b64encode(f"{options.username}:{options.token}".encode()).decode()
        return f"Basic {pair}"
    return f"Bearer {options.token}"


class BitbucketCloudApi:
    name = "bitbucket"
    default_base_url = "https://api.bitbucket.org"
    default_hosts: tuple[str, ...] = ("bitbucket.org",)
    max_context = MAX_NAME
    max_description = MAX_DESCRIPTION
    max_posts_per_context = 0
    extra_keys: tuple[str, ...] = ()

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        return RepoRef(host, path) if len(path) == 2 else None

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        workspace, slug = (quote(p, safe="") for p in repo.path)
        body = {
            "key": shorten(status.context, MAX_KEY),
            "state": STATES[status.state],
            "name": status.context[:MAX_NAME],
            "description": status.description[:MAX_DESCRIPTION],
            "url": status.target_url
            or f"https://bitbucket.org/{workspace}/{slug}/commits/{status.sha}",
        }
        return OutboundRequest(
            url=f"{options.base_url}/2.0/repositories/{workspace}/{slug}/commit/{status.sha}"
            "/statuses/build",
            headers={"Authorization": auth_header(options), "Content-Type": "application/json"},
            body=json.dumps(body, sort_keys=True, ensure_ascii=False).encode(),
            purpose="create build status",
        )

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        return classify_common(response, now)

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found = []
        for r in requests:
            body = json.loads(r.body)
            if len(body.get("key", "")) > MAX_KEY:
                found.append(f"key over {MAX_KEY} characters")
            if not body.get("url"):
                found.append("url missing")
            if body.get("state") not in ("INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"):
                found.append(f"state {body.get('state')!r}")
        return found

    def parse_extra(self, raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        return {}


API = BitbucketCloudApi()
TYPE = CommitStatusType(
    API,
    "acme/podinfo",
    [
        ResponseCase(
            "401 expired token",
            401,
            "fail",
            body=b'{"type":"error","error":{"message":"Access token expired."}}',
        )
    ],
)
