"""Flux revision formats -> commit SHA, and Git URLs -> host and repository, for every form.

Table rows for the documented formats (flux-api.md §3) and hypothesis for the rest: every
generated revision or URL in a known form parses back to its parts, and garbage never raises.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifiers.model import commit_sha
from notifiers.providers.commitstatus import shorten, split_git_url
from notifiers.providers.github import API as GITHUB
from notifiers.providers.gitlab import API as GITLAB

SHA1 = "363a6a8fe6a7f13e05d34c163b0ef02a777da20a"
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

REVISIONS = [
    (f"main@sha1:{SHA1}", SHA1),
    (f"refs/heads/main@sha1:{SHA1}", SHA1),
    (f"v1.0.1@sha1:{SHA1}", SHA1),
    (f"main@sha256:{SHA256}", SHA256),  # a SHA-256 Git repository
    (f"main/{SHA1}", SHA1),  # pre-v2
    (f"6.1.8/{SHA1}", SHA1),  # OCI origin revision
    (f"6.1.6@sha1:{SHA1}", SHA1),
    (f"sha256:{SHA256}", ""),  # a digest (Bucket, HelmRepository, OCI by digest): no commit
    (f"latest@sha256:{SHA256[:12]}", ""),
    ("6.0.3", ""),
    ("6.0.3+2", ""),
    ("6.6.1+0cc9a8446c95", ""),
    ("", ""),
    ("main@sha1:nothex", ""),
]


@pytest.mark.parametrize(("revision", "sha"), REVISIONS, ids=[r or "empty" for r, _ in REVISIONS])
def test_revision_formats(revision: str, sha: str) -> None:
    assert commit_sha(revision) == sha


hexsha = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
ref = st.text(
    alphabet=string.ascii_letters + string.digits + "-_./", min_size=1, max_size=30
).filter(lambda r: "@" not in r and ":" not in r)


@given(ref=ref, sha=hexsha)
def test_any_ref_with_a_sha1_gives_the_sha(ref: str, sha: str) -> None:
    assert commit_sha(f"{ref}@sha1:{sha}") == sha
    assert commit_sha(f"{ref}@sha1:{sha.upper()}") == sha


@given(st.text(max_size=200))
def test_garbage_never_raises_and_yields_hex_or_nothing(text: str) -> None:
    sha = commit_sha(text)
    assert sha == "" or (len(sha) in (40, 64) and set(sha) <= set("0123456789abcdef"))


segment = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20
).filter(lambda s: s not in (".", "..") and not s.endswith(".git") and s != "-")
host = st.from_regex(r"\A[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,10}){1,3}\Z")


@given(
    host=host,
    owner=segment,
    repo=segment,
    git=st.booleans(),
    form=st.sampled_from(
        ["https", "http", "ssh", "scp", "ssh-port", "https-user", "trailing-slash"]
    ),
)
def test_url_forms_give_host_and_path(
    host: str, owner: str, repo: str, git: bool, form: str
) -> None:
    suffix = ".git" if git else ""
    url = {
        "https": f"https://{host}/{owner}/{repo}{suffix}",
        "http": f"http://{host}/{owner}/{repo}{suffix}",
        "ssh": f"ssh://git@{host}/{owner}/{repo}{suffix}",
        "scp": f"git@{host}:{owner}/{repo}{suffix}",
        "ssh-port": f"ssh://git@{host}:2222/{owner}/{repo}{suffix}",
        "https-user": f"https://bot@{host}/{owner}/{repo}{suffix}",
        "trailing-slash": f"https://{host}/{owner}/{repo}{suffix}/",
    }[form]
    assert split_git_url(url) == (host, (owner, repo))
    assert GITHUB.repo(host, (owner, repo)) is not None


@given(groups=st.lists(segment, min_size=2, max_size=5))
def test_gitlab_subgroups_are_one_project_path(groups: list[str]) -> None:
    url = "https://gitlab.example.com/" + "/".join(groups) + ".git"
    split = split_git_url(url)
    assert split == ("gitlab.example.com", tuple(groups))
    repo = GITLAB.repo(*split)
    assert repo is not None
    assert repo.path == tuple(groups)
    assert GITHUB.repo(*split) is None or len(groups) == 2


@given(st.text(max_size=100))
def test_garbage_urls_never_raise(text: str) -> None:
    result = split_git_url(text)
    if result is not None:
        host, path = result
        assert host
        assert path
        assert all(path)


@pytest.mark.parametrize(
    "url", ["", "not a url", "ftp://example.com/a/b", "https://", "git@:a/b", "file:///srv/git/x"]
)
def test_unusable_urls(url: str) -> None:
    assert split_git_url(url) is None


@given(text=st.text(min_size=1, max_size=400), limit=st.integers(min_value=20, max_value=300))
def test_contexts_are_shortened_deterministically(text: str, limit: int) -> None:
    short = shorten(text, limit)
    assert len(short) <= limit
    assert short == shorten(text, limit)
    if len(text) <= limit:
        assert short == text
    else:
        assert shorten(text + "x", limit) != short or len(text) + 1 <= limit
