"""Bitbucket Data Center / Server build statuses (``type: bitbucket_server``).

``POST {base_url}/rest/api/latest/projects/{projectKey}/repos/{slug}/commits/{sha}/builds`` with
``key``, ``state`` (``INPROGRESS``, ``SUCCESSFUL``, ``FAILED``), ``name``, ``description`` and
``url`` (required); ``Authorization: Bearer`` with an HTTP access token (project or repository
write). The repository comes from clone URLs such as ``https://host/scm/PROJ/repo.git`` or
``ssh://git@host:7999/proj/repo.git``; project keys are upper case.
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

STATES = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED", "error": "FAILED"}
MAX_KEY = 255
MAX_DESCRIPTION = 255


class BitbucketServerApi:
    name = "bitbucket_server"
    default_base_url = "https://bitbucket.example.com"
    default_hosts: tuple[str, ...] = ()
    max_context = MAX_KEY
    max_description = MAX_DESCRIPTION
    max_posts_per_context = 0
    extra_keys: tuple[str, ...] = ()

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        if "scm" in path:  # https clone URLs, possibly under a context path
            path = path[path.index("scm") + 1 :]
        if len(path) != 2:
            return None
        return RepoRef(host, (path[0].upper(), path[1]))

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        project, slug = (quote(p, safe="") for p in repo.path)
        body = {
            "key": status.context[:MAX_KEY],
            "state": STATES[status.state],
            "name": status.context[:MAX_KEY],
            "description": status.description[:MAX_DESCRIPTION],
            "url": status.target_url
            or f"{options.base_url}/projects/{project}/repos/{slug}/commits/{status.sha}",
        }
        return OutboundRequest(
            url=f"{options.base_url}/rest/api/latest/projects/{project}/repos/{slug}/commits/"
            f"{status.sha}/builds",
            headers={
                "Authorization": f"Bearer {options.token}",
                "Content-Type": "application/json",
            },
            body=json.dumps(body, sort_keys=True, ensure_ascii=False).encode(),
            purpose="create build status",
        )

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        return classify_common(response, now)

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found = []
        for r in requests:
            body = json.loads(r.body)
            if not body.get("url"):
                found.append("url missing")
            if body.get("state") not in (
                "INPROGRESS",
                "SUCCESSFUL",
                "FAILED",
                "CANCELLED",
                "UNKNOWN",
            ):
                found.append(f"state {body.get('state')!r}")
        return found

    def parse_extra(self, raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        return {}


API = BitbucketServerApi()
TYPE = CommitStatusType(
    API,
    "ACME/podinfo",
    [
        ResponseCase(
            "401 bad token",
            401,
            "fail",
            body=b'{"errors":[{"message":"Authentication failed. '
            b'Please check your credentials."}]}',
        )
    ],
)
