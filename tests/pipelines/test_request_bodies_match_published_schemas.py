"""Request bodies checked against the hosts' own published API descriptions.

Small fragments are kept in tests/pipelines/openapi/ (each names where it comes from): GitHub's
create-commit-status request body and Gitea's ``CreateStatusOption``. The golden request and
hypothesis-generated statuses (any context, state, Unicode description of any length) must
validate: nothing extra, nothing over the limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    RepoRef,
    render_context,
    truncate_chars,
)
from notifiers.providers.gitea import API as GITEA
from notifiers.providers.github import API as GITHUB

SCHEMAS = Path(__file__).parent / "openapi"
CASES: list[tuple[Any, str]] = [
    (GITHUB, "github-create-commit-status.json"),
    (GITEA, "gitea-create-status-option.json"),
]


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.mark.parametrize(("api", "name"), CASES, ids=["github", "gitea"])
def test_golden_body_validates(api: Any, name: str) -> None:
    golden = json.loads((Path(__file__).parent / "golden" / f"{api.name}.json").read_text())
    jsonschema.validate(golden["body"], schema(name))


@pytest.mark.parametrize(("api", "name"), CASES, ids=["github", "gitea"])
@settings(max_examples=60, deadline=None)
@given(
    state=st.sampled_from(["pending", "success", "failure", "error"]),
    description=st.text(max_size=600),
    cluster=st.text(min_size=1, max_size=300),
    target=st.sampled_from(["", "https://fluxwatch.example.com/rollouts"]),
)
def test_generated_bodies_validate(
    api: Any, name: str, state: str, description: str, cluster: str, target: str
) -> None:
    context = render_context(
        "fluxwatch/{cluster}/{kind}/{namespace}/{name}",
        {"cluster": cluster, "kind": "Kustomization", "namespace": "apps", "name": "podinfo"},
        api.max_context,
    )
    status = CommitStatus(
        "a" * 40,
        context,
        state,
        truncate_chars(description, api.max_description),
        target,  # type: ignore[arg-type]
    )
    options = CommitStatusOptions(base_url="https://example.com", token="t")
    request = api.build(status, RepoRef("example.com", ("acme", "podinfo")), options)
    jsonschema.validate(json.loads(request.body), schema(name))
    assert api.violations([request]) == []
