"""Each host's request for one fleet status, byte for byte: URL, headers (token masked), body.

Regenerate with ``UPDATE_GOLDEN=1`` after an intended change and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from notifiers.providers import PROVIDERS
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    CommitStatusType,
    resolve_repo,
)

GOLDEN = Path(__file__).parent / "golden"
TOKEN = "tok-123"
STATUS = CommitStatus(
    sha="8027230c6b4d0a2f3f1b9f1d3c2e5a7b9d0e1f2a",
    context="fluxwatch/fleet/Kustomization/apps/podinfo",
    state="pending",
    description="applied on 212/500 clusters, 3 failing",
    target_url="https://fluxwatch.example.com/rollouts",
)
SOURCES = {
    "github": ("https://github.example.com/api/v3", "git@github.example.com:acme/podinfo.git"),
    "gitlab": (
        "https://gitlab.example.com",
        "https://gitlab.example.com/acme/platform/podinfo.git",
    ),
    "gitea": ("https://gitea.example.com", "ssh://git@gitea.example.com:2222/acme/podinfo.git"),
    "bitbucket": ("https://api.bitbucket.org", "git@bitbucket.org:acme/podinfo.git"),
    "bitbucket_server": (
        "https://bitbucket.example.com",
        "https://bitbucket.example.com/scm/ACME/podinfo.git",
    ),
    "azure_devops": ("https://dev.azure.com", "https://dev.azure.com/acme/platform/_git/podinfo"),
}
HOSTS = sorted(name for name in SOURCES if name in PROVIDERS)


@pytest.mark.parametrize("name", HOSTS)
def test_request_matches_golden(name: str) -> None:
    provider_type = PROVIDERS[name]
    assert isinstance(provider_type, CommitStatusType)
    api = provider_type.api
    base_url, source = SOURCES[name]
    options = CommitStatusOptions(
        base_url=base_url, token=TOKEN, extra=api.parse_extra({}, "golden")
    )
    repo, why = resolve_repo(api, options, source)
    assert repo is not None, why
    request = api.build(STATUS, repo, options)
    assert api.violations([request]) == []
    doc = {
        "url": request.url,
        "headers": {k: v.replace(TOKEN, "<token>") for k, v in sorted(request.headers.items())},
        "body": json.loads(request.body),
    }
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.read_text() == text
