"""GitHub commit statuses (``type: github``), github.com or GitHub Enterprise Server.

``POST {base_url}/repos/{owner}/{repo}/statuses/{sha}`` with ``state`` (``pending``,
``success``, ``failure``, ``error``), ``context``, ``description`` (at most 140 characters, else
422) and ``target_url``. GitHub keeps at most 1,000 statuses per commit and context and answers
422 to every further one, so the fleet publisher coalesces progress updates and stops before
the cap. A token needs ``repo:status`` (classic) or ``Commit statuses: write`` (fine-grained /
GitHub App). Enterprise: ``base_url: https://ghe.example.com/api/v3``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from notifiers.http import HttpResponse
from notifiers.model import Outcome, Retry
from notifiers.providers.base import OutboundRequest, ResponseCase, header
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    HostApiDefaults,
    RepoRef,
    classify_common,
    github_style_body,
    json_request,
    url_segments,
)

MAX_DESCRIPTION = 140
MAX_STATUSES_PER_CONTEXT = 1000


class GitHubApi(HostApiDefaults):
    name = "github"
    default_base_url = "https://api.github.com"
    default_hosts: tuple[str, ...] = ("github.com", "ssh.github.com")
    max_description = MAX_DESCRIPTION
    max_posts_per_context = MAX_STATUSES_PER_CONTEXT

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest:
        owner, name = url_segments(repo)
        return json_request(
            f"{options.base_url}/repos/{owner}/{name}/statuses/{status.sha}",
            {
                "Authorization": f"Bearer {options.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            github_style_body(status, MAX_DESCRIPTION),
            "create commit status",
        )

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        # Rate limits come as 403 or 429 with x-ratelimit-remaining: 0 (primary) or a
        # Retry-After (secondary): wait, do not dead-letter.
        if (
            response.status in (403, 429)
            and header(response.headers, "x-ratelimit-remaining") == "0"
        ):
            reset = header(response.headers, "x-ratelimit-reset") or ""
            after = max(float(reset) - now, 1.0) if reset.isdigit() else 60.0
            return Retry("GitHub rate limit", after=after, status_code=response.status)
        if response.status == 403 and header(response.headers, "Retry-After"):
            return Retry(
                "GitHub secondary rate limit",
                after=float(header(response.headers, "Retry-After") or 60),
                status_code=403,
            )
        return classify_common(response, now)

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]:
        found: list[str] = []
        for r in requests:
            body = json.loads(r.body)
            if len(body.get("description", "")) > MAX_DESCRIPTION:
                found.append(f"description over {MAX_DESCRIPTION} characters")
            if body.get("state") not in ("pending", "success", "failure", "error"):
                found.append(f"state {body.get('state')!r}")
            if not body.get("context"):
                found.append("empty context")
        return found


API = GitHubApi()
TYPE = CommitStatusType(
    API,
    "acme/podinfo",
    [
        ResponseCase(
            "422 description too long",
            422,
            "fail",
            body=b'{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom",'
            b'"field":"description","message":"description is too long (maximum is 140 '
            b'characters)"}],"documentation_url":"https://docs.github.com/rest"}',
        ),
        ResponseCase(
            "403 primary rate limit",
            403,
            "retry",
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1060"},
            after=60.0,
        ),
    ],
)
