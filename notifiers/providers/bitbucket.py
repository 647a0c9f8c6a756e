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
from collections.abc import Sequence

from notifiers.providers.base import OutboundRequest, ResponseCase
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    HostApiDefaults,
    RepoRef,
    json_request,
    shorten,
    url_segments,
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


class BitbucketCloudApi(HostApiDefaults):
    name = "bitbucket"
    default_base_url = "https://api.bitbucket.org"
    default_hosts: tuple[str, ...] = ("bitbucket.org",)
    max_context = MAX_NAME
    max_description = MAX_DESCRIPTION

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        workspace, slug = url_segments(repo)
        body = {
            "key": shorten(status.context, MAX_KEY),
            "state": STATES[status.state],
            "name": status.context[:MAX_NAME],
            "description": status.description[:MAX_DESCRIPTION],
            "url": status.target_url
            or f"https://bitbucket.org/{workspace}/{slug}/commits/{status.sha}",
        }
        return json_request(
            f"{options.base_url}/2.0/repositories/{workspace}/{slug}/commit/{status.sha}"
            "/statuses/build",
            {"Authorization": auth_header(options)},
            body,
            "create build status",
        )

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
