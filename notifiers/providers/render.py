"""What a person reads about a notification, independent of where it is shown (Slack, Teams).

``message_view`` is pure: it picks the message kind (failing, stalled, recovered, rollout,
unreachable, firing, resolved, ...), the one-line title, the fields, the grouped summary
("failing on 37 of 500 clusters: a, b, ... and 34 more" with the root cause named once), the
commit link for known Git hosts and the links the configuration provides. The chat providers only
lay this view out in their own format and enforce their own limits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from notifiers.model import Notification

CLUSTERS_SHOWN = 10  # cluster names spelled out in a grouped summary before "and N more"
DEPENDENTS_SHOWN = 10

# kind -> (label, Slack emoji, colour hex, Adaptive Card colour / container style)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "failing": ("Failing", ":red_circle:", "#E01E5A", "attention"),
    "stalled": ("Stalled", ":large_orange_circle:", "#ECB22E", "warning"),
    "unreachable": ("Cluster unreachable", ":black_circle:", "#6B6B6B", "attention"),
    "reachable": ("Cluster reachable again", ":large_green_circle:", "#2EB67D", "good"),
    "recovered": ("Recovered", ":large_green_circle:", "#2EB67D", "good"),
    "rollout": ("Rolled out", ":large_blue_circle:", "#36C5F0", "accent"),
    "rolling_out": ("Rolling out", ":large_blue_circle:", "#36C5F0", "accent"),
    "firing": ("Alert firing", ":rotating_light:", "#E01E5A", "attention"),
    "resolved": ("Alert resolved", ":white_check_mark:", "#2EB67D", "good"),
    "progressing": ("Progressing", ":hourglass_flowing_sand:", "#36C5F0", "accent"),
    "suspended": ("Suspended", ":double_vertical_bar:", "#6B6B6B", "default"),
    "resumed": ("Resumed", ":arrow_forward:", "#36C5F0", "accent"),
    "ready": ("Ready", ":large_green_circle:", "#2EB67D", "good"),
    "other": ("Update", ":information_source:", "#6B6B6B", "default"),
}

OPENING_KINDS = frozenset({"failing", "stalled", "unreachable", "firing"})
CLOSING_KINDS = frozenset({"recovered", "reachable", "resolved"})
_BAD = frozenset({"failing", "stalled", "unreachable", "firing"})


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class MessageView:
    """Plain text parts (never escaped here: each destination escapes for its own markup)."""

    kind: str
    label: str
    emoji: str
    colour: str
    card_colour: str
    title: str  # "Kustomization apps/podinfo"
    where: str  # "prod-eu-1" or "37 of 500 clusters"
    headline: str  # one line for notifications and fallbacks
    facts: tuple[tuple[str, str], ...]  # (name, value) pairs in display order
    message: str
    group_line: str  # "failing on 37 of 500 clusters: a, b, ... and 34 more" or ""
    root_cause: str  # "GitRepository flux-system/repo (AuthenticationFailed)" or ""
    dependents_line: str
    revision: str
    commit: str
    commit_url: str
    links: tuple[Link, ...]
    incident: str  # what the chat thread is keyed by (see incident_key)
    count: int


# Where an event came from, as readers know the senders.
SOURCE_NAMES = {
    "flux": "Flux event",
    "transition": "exporter",
    "alertmanager": "Alertmanager",
    "rollout": "fleet rollout state",
}


def source_names(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Sorted reader-facing names of the sources of ``events`` (``Flux event``, ``exporter``...)."""
    names = {SOURCE_NAMES.get(str(e.get("source", "")), str(e.get("source", ""))) for e in events}
    return sorted(n for n in names if n)


def message_kind(event: Mapping[str, Any]) -> str:
    status = str(event.get("status", ""))
    etype = str(event.get("type", ""))
    previous = str(event.get("previous_status", ""))
    if etype == "fleet_rollout" and status == "progressing":
        return "rolling_out"
    if status == "ready":
        if etype == "recovered" or previous in _BAD:
            return "recovered"
        if etype == "revision_applied" or event.get("revision"):
            return "rollout"
        return "ready"
    if status in KINDS:
        return status
    return "other"


def object_title(event: Mapping[str, Any]) -> str:
    kind = str(event.get("kind", ""))
    ns = str(event.get("namespace", ""))
    name = str(event.get("name", ""))
    if kind == "Cluster" or (not ns and not kind):
        return name or str(event.get("cluster", ""))
    return f"{kind} {ns}/{name}" if ns else f"{kind} {name}"


def incident_key(notification: Notification) -> str:
    """What a chat thread is about, stable from the first notification to the recovery.

    The root cause when one is named, else the object; cluster-qualified when the notification
    is about one cluster, fleet-wide (``*``) when grouped across clusters. Alerts are keyed by
    their fingerprint. A rollout that follows no failure is keyed by its revision too
    (``rollout_key``), so each fleet rollout gets its own thread.
    """
    first = notification.events[0] if notification.events else {}
    summary = notification.summary
    clusters = summary["clusters"]
    scope = clusters[0] if len(clusters) == 1 else "*"
    if first.get("source") == "alertmanager":
        labels = first.get("labels") or {}
        return f"alert:{scope}/{first.get('uid') or labels.get('alertname', '')}"
    root = summary.get("root_cause")
    if root:
        obj = f"{root['kind']}/{root['namespace']}/{root['name']}"
    else:
        obj = f"{first.get('kind', '')}/{first.get('namespace', '')}/{first.get('name', '')}"
    return f"object:{scope}/{obj}"


def rollout_key(notification: Notification) -> str:
    first = notification.events[0] if notification.events else {}
    obj = f"{first.get('kind', '')}/{first.get('namespace', '')}/{first.get('name', '')}"
    return f"rollout:{obj}@{first.get('revision', '')}"


def short_revision(revision: str, commit: str) -> str:
    if commit and commit in revision:
        return revision.replace(commit, commit[:12])
    return revision


_SCP = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


def repository_web_url(source_url: str) -> tuple[str, str] | None:
    """(host, https URL of the repository) from an https, ssh or scp-like Git URL."""
    url = source_url.strip()
    if not url:
        return None
    match = re.match(r"^(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+)$", url)
    if match is None:
        match = _SCP.match(url)
    if match is None:
        return None
    host, path = match.group(1).lower(), match.group(2).strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    if host == "ssh.dev.azure.com" and path.startswith("v3/"):
        # ssh://git@ssh.dev.azure.com/v3/org/project/repo -> dev.azure.com/org/project/_git/repo
        parts = path.split("/")
        if len(parts) == 4:
            return "dev.azure.com", f"https://dev.azure.com/{parts[1]}/{parts[2]}/_git/{parts[3]}"
        return None
    return host, f"https://{host}/{path}"


def commit_url(source_url: str, commit: str) -> str:
    """The commit page on GitHub, GitLab, Gitea/Forgejo, Bitbucket or Azure DevOps; else ""."""
    if not commit or not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        return ""
    found = repository_web_url(source_url)
    if found is None:
        return ""
    host, repo = found
    if host == "github.com" or host.startswith("github."):
        return f"{repo}/commit/{commit}"
    if host == "gitlab.com" or host.startswith("gitlab."):
        return f"{repo}/-/commit/{commit}"
    if host in ("bitbucket.org",) or host.startswith("bitbucket."):
        return f"{repo}/commits/{commit}"
    if host == "dev.azure.com" or host.endswith(".visualstudio.com"):
        return f"{repo}/commit/{commit}"
    if host in ("codeberg.org", "gitea.com") or host.startswith(("gitea.", "forgejo.")):
        return f"{repo}/commit/{commit}"
    return ""


def _source_url(event: Mapping[str, Any]) -> str:
    meta = event.get("metadata") or {}
    notes = event.get("annotations") or {}
    for value in (
        meta.get("source_url"),
        meta.get("url"),
        notes.get("fluxwatch.io/source-url"),
    ):
        if isinstance(value, str) and value:
            return value
    return ""


def _fill(template: str, event: Mapping[str, Any]) -> str:
    """Expand ``{cluster}``, ``{kind}``, ``{namespace}``, ``{name}``, ``{revision}`` URL-quoted."""
    values = {
        k: quote(str(event.get(k, "") or ""), safe="")
        for k in ("cluster", "kind", "namespace", "name", "revision", "commit", "status")
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _duration(seconds: float) -> str:
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def human_duration(seconds: float) -> str:
    return _duration(seconds)


def _list_some(names: Sequence[str], limit: int) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... and {len(names) - limit} more"


def message_view(
    notification: Notification,
    *,
    dashboard_url: str = "",
    runbook_url: str = "",
    as_kind: str = "",
) -> MessageView:
    """``as_kind`` overrides the kind, e.g. a Flux success that ends an open incident is shown
    as "recovered" (Flux events carry no previous status to tell)."""
    events = list(notification.events)
    first: Mapping[str, Any] = events[0] if events else {}
    summary = notification.summary
    kind = as_kind or message_kind(first)
    label, emoji, colour, card_colour = KINDS[kind]
    clusters: list[str] = list(summary["clusters"])
    count = int(summary["count"])
    fleet = str((first.get("metadata") or {}).get("fleet_clusters", ""))
    fleet_part = f" of {fleet}" if fleet.isdigit() and int(fleet) >= len(clusters) else ""
    title = object_title(first)
    if first.get("source") == "alertmanager":
        alertname = str((first.get("labels") or {}).get("alertname", ""))
        if alertname and alertname not in title:
            title = f"{alertname}: {title}"
    where = clusters[0] if len(clusters) == 1 else f"{len(clusters)}{fleet_part} clusters"
    fleet_rollout = first.get("type") == "fleet_rollout"  # the bridge's fleet-wide state
    if fleet_rollout:
        where = f"fleet ({fleet} clusters)" if fleet.isdigit() else "fleet"
    group_line = ""
    if len(clusters) > 1:
        verb = label.lower() if kind not in ("rollout",) else "rolled out"
        group_line = (
            f"{verb} on {len(clusters)}{fleet_part} clusters: "
            f"{_list_some(clusters, CLUSTERS_SHOWN)}"
        )
    elif count > 1:
        group_line = f"{count} events grouped on {where}"
    root = summary.get("root_cause")
    root_cause = ""
    dependents_line = ""
    if root:
        root_cause = f"{root['kind']} {root['namespace']}/{root['name']}"
        if root.get("reason"):
            root_cause += f" ({root['reason']})"
        deps = [d.split("/", 1)[1].replace("/", " ", 1) for d in summary["dependents"]]
        unique = sorted(set(deps))
        if unique:
            dependents_line = (
                f"{len(unique)} dependent{'s' if len(unique) != 1 else ''} blocked: "
                f"{_list_some(unique, DEPENDENTS_SHOWN)}"
            )
    revision = str(first.get("revision", "") or "")
    commit = str(first.get("commit", "") or "")
    link = commit_url(_source_url(first), commit)
    facts: list[tuple[str, str]] = [("Cluster", where)]
    facts.append(("Object", title))
    if first.get("reason") and not fleet_rollout:
        facts.append(("Reason", str(first["reason"])))
    if revision:
        facts.append(("Revision", short_revision(revision, commit)))
    latency = first.get("latency_seconds")
    if kind == "rollout" and isinstance(latency, int | float) and latency >= 0:
        facts.append(("Commit to applied", _duration(float(latency))))
    if root_cause and not root_cause.startswith(title):
        facts.append(("Root cause", root_cause))
    if first.get("source") == "alertmanager":
        severity = str((first.get("labels") or {}).get("severity", ""))
        if severity:
            facts.append(("Severity", severity))
    reporters = source_names(events)
    if reporters:  # a Flux event and the exporter may both report an object: say which this is
        facts.append(("Reported by", ", ".join(reporters)))
    links: list[Link] = []
    if link:
        links.append(Link("View commit", link))
    if dashboard_url:
        links.append(Link("Dashboard", _fill(dashboard_url, first)))
    runbook = str(
        (first.get("metadata") or {}).get("runbook_url", "")
        or (first.get("annotations") or {}).get("fluxwatch.io/runbook-url", "")
        or ""
    )
    if runbook.startswith(("https://", "http://")):
        links.append(Link("Runbook", runbook))
    elif runbook_url:
        links.append(Link("Runbook", _fill(runbook_url, first)))
    headline = f"{label}: {where} / {title}"
    if fleet_rollout and first.get("message"):
        headline = str(first["message"])  # "Kustomization ... rev abc1234: applied on 212/500"
    if first.get("reason") and kind in OPENING_KINDS:
        headline += f": {first['reason']}"
    return MessageView(
        kind=kind,
        label=label,
        emoji=emoji,
        colour=colour,
        card_colour=card_colour,
        title=title,
        where=where,
        headline=headline,
        facts=tuple(facts),
        message=str(first.get("message", "") or ""),
        group_line=group_line,
        root_cause=root_cause,
        dependents_line=dependents_line,
        revision=revision,
        commit=commit,
        commit_url=link,
        links=tuple(links),
        incident=incident_key(notification),
        count=count,
    )


TRUNCATION_MARKER = " … [truncated: {n} more characters]"


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending with a visible marker when something was cut."""
    if len(text) <= limit:
        return text
    for _ in range(3):  # the marker's own length depends on the number it shows
        marker = TRUNCATION_MARKER.format(n=len(text) - max(0, limit - 40))
        keep = max(0, limit - len(marker))
        marker = TRUNCATION_MARKER.format(n=len(text) - keep)
        if keep + len(marker) <= limit:
            return text[:keep] + marker
    return text[: max(0, limit - 1)] + "…"
