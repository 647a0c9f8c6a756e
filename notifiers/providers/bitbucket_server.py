"""Bitbucket Data Center / Server build statuses (``type: bitbucket_server``).

``POST {base_url}/rest/api/latest/projects/{projectKey}/repos/{slug}/commits/{sha}/builds`` with
``key``, ``state`` (``INPROGRESS``, ``SUCCESSFUL``, ``FAILED``), ``name``, ``description`` and
``url`` (required); ``Authorization: Bearer`` with an HTTP access token (project or repository
write). The repository comes from clone URLs such as ``https://host/scm/PROJ/repo.git`` or
``ssh://git@host:7999/proj/repo.git``; project keys are upper case.
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
    json_request,
    url_segments,
)

STATES = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED", "error": "FAILED"}
MAX_KEY = 255
MAX_DESCRIPTION = 255


class BitbucketServerApi(HostApiDefaults):
    name = "bitbucket_server"
    default_base_url = "https://bitbucket.example.com"
    max_context = MAX_KEY
    max_description = MAX_DESCRIPTION

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        if "scm" in path:  # https clone URLs, possibly under a context path
            path = path[path.index("scm") + 1 :]
        if len(path) != 2:
            return None
        return RepoRef(host, (path[0].upper(), path[1]))

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        project, slug = url_segments(repo)
        body = {
            "key": status.context[:MAX_KEY],
            "state": STATES[status.state],
            "name": status.context[:MAX_KEY],
            "description": status.description[:MAX_DESCRIPTION],
            "url": status.target_url
            or f"{options.base_url}/projects/{project}/repos/{slug}/commits/{status.sha}",
        }
        return json_request(
            f"{options.base_url}/rest/api/latest/projects/{project}/repos/{slug}/commits/"
            f"{status.sha}/builds",
            {"Authorization": f"Bearer {options.token}"},
            body,
            "create build status",
        )

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
