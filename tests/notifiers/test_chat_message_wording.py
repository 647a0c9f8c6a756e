"""Wording shared by Slack and Teams: commit links per Git host, escaping, grouped summaries."""

from __future__ import annotations

import pytest

from notifiers.providers.render import commit_url, cut, incident_key, message_view
from notifiers.providers.slack_blocks import escape, escape_cut
from tests.notifiers.notification_samples import SHA, event, kinds, notification


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("https://github.com/org/repo.git", f"https://github.com/org/repo/commit/{SHA}"),
        ("ssh://git@github.com/org/repo", f"https://github.com/org/repo/commit/{SHA}"),
        ("git@github.com:org/repo.git", f"https://github.com/org/repo/commit/{SHA}"),
        ("https://gitlab.com/group/sub/repo", f"https://gitlab.com/group/sub/repo/-/commit/{SHA}"),
        ("https://gitea.example.com/org/repo", f"https://gitea.example.com/org/repo/commit/{SHA}"),
        ("https://codeberg.org/org/repo", f"https://codeberg.org/org/repo/commit/{SHA}"),
        ("https://bitbucket.org/ws/repo.git", f"https://bitbucket.org/ws/repo/commits/{SHA}"),
        (
            "https://dev.azure.com/org/proj/_git/repo",
            f"https://dev.azure.com/org/proj/_git/repo/commit/{SHA}",
        ),
        (
            "ssh://git@ssh.dev.azure.com/v3/org/proj/repo",
            f"https://dev.azure.com/org/proj/_git/repo/commit/{SHA}",
        ),
        ("https://git.internal.example.com/org/repo", ""),  # unknown host: plain text
        ("oci://ghcr.io/org/manifests", ""),
        ("", ""),
    ],
)
def test_commit_links_for_known_hosts(source: str, expected: str) -> None:
    assert commit_url(source, SHA) == expected


def test_no_link_without_a_commit() -> None:
    assert commit_url("https://github.com/org/repo", "") == ""
    assert commit_url("https://github.com/org/repo", "6.6.1") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123> & <#C1>", "&lt;@U123&gt; &amp; &lt;#C1&gt;"),
        ("a &amp; b", "a &amp;amp; b"),
        ("*bold* _it_", "*bold* _it_"),
    ],
)
def test_slack_escaping(text: str, expected: str) -> None:
    assert escape(text) == expected


def test_escaped_cuts_never_split_an_entity_and_show_a_marker() -> None:
    out = escape_cut("&" * 5000, 3000)
    assert len(out) <= 3000
    assert "[truncated:" in out
    body = out.split(" … [truncated")[0]
    assert body == "&amp;" * (len(body) // 5)
    assert cut("x" * 10, 10) == "x" * 10


def test_grouped_summary_names_the_root_cause_once() -> None:
    view = message_view(kinds()["grouped"])
    assert view.group_line.startswith("failing on 37 of 500 clusters: prod-000, prod-001, ")
    assert view.group_line.endswith(", ... and 27 more")
    assert [name for name, _ in view.facts].count("Root cause") == 0  # it is the title
    assert view.title == "GitRepository flux-system/fleet-infra"
    assert view.dependents_line == "1 dependent blocked: Kustomization apps/repo-apps"


def test_incident_keys() -> None:
    one = notification(event())
    assert incident_key(one) == "object:prod-eu-1/Kustomization/apps/podinfo"
    assert incident_key(kinds()["grouped"]) == "object:*/GitRepository/flux-system/fleet-infra"
    assert incident_key(kinds()["alert-firing"]) == "alert:prod-eu-1/3f2a9c1e0b7d4a11"
    assert incident_key(kinds()["alert-firing"]) == incident_key(kinds()["alert-resolved"])
