"""What every commit-status destination shares: the status, the repository, contexts, options.

One module per Git host (``github``, ``gitlab``, ``gitea``, ``bitbucket``, ``bitbucket_server``,
``azure_devops``) supplies a ``HostApi``: how a ``CommitStatus`` becomes that host's request
(pure), how its answers are classified (pure), and which repository a Git URL names. Statuses
come from two places:

- fleet rollouts (``notifiers.statuspublisher``): one ``fluxwatch/fleet/...`` context per object
  and commit, and optionally one per cluster, kept idempotent by a durable ledger;
- routed notifications (``send``): one per-cluster status per event that names a commit, for
  routes that point at the destination.

The commit comes from Flux's revision formats (``notifiers.model.commit_sha``); no commit, no
status (skipped and counted, never an error).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

from notifiers.configkit import ConfigError, bool_, check_keys, read_secret, str_, str_list
from notifiers.http import HttpResponse, TransportError, truncate_utf8
from notifiers.model import Fail, Notification, Ok, Outcome, Retry, commit_sha
from notifiers.providers.base import (
    Conformance,
    OutboundRequest,
    Preview,
    Provider,
    ProviderContext,
    ResponseCase,
    header,
    mask_secrets,
)
from notifiers.retry import classify_status, parse_retry_after

State = Literal["pending", "success", "failure", "error"]

DEFAULT_FLEET_CONTEXT = "fluxwatch/fleet/{kind}/{namespace}/{name}"
DEFAULT_CLUSTER_CONTEXT = "fluxwatch/{cluster}/{kind}/{namespace}/{name}"
CONTEXT_FIELDS = frozenset({"cluster", "kind", "namespace", "name"})
REPOSITORY_ANNOTATION = "fluxwatch.io/repository"

_EVENT_STATES: dict[str, State] = {
    "ready": "success",
    "failing": "failure",
    "stalled": "failure",
    "progressing": "pending",
}


@dataclass(frozen=True, slots=True)
class CommitStatus:
    """One status for one commit, in fluxwatch's terms; hosts map state and limits."""

    sha: str
    context: str
    state: State
    description: str
    target_url: str = ""


@dataclass(frozen=True, slots=True)
class RepoRef:
    """A repository on a host: ``path`` is what the host's API addresses it by.

    GitHub/Gitea/Bitbucket Cloud: (owner, repo); GitLab: the whole namespace path (subgroups
    included); Bitbucket Data Center: (project key, slug); Azure DevOps: (org, project, repo).
    """

    host: str
    path: tuple[str, ...]


_SCP = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")


def split_git_url(url: str) -> tuple[str, tuple[str, ...]] | None:
    """Host and path segments of a Git URL (https, http, ssh, git, scp-like), ``.git`` and
    empty segments dropped; None when it is not one."""
    text = url.strip()
    if not text or any(c.isspace() for c in text):
        return None
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname or ""
        except ValueError:
            return None
        if parts.scheme.lower() not in ("https", "http", "ssh", "git", "git+ssh", "ssh+git"):
            return None
        path = parts.path
    else:
        m = _SCP.match(text)
        if m is None:
            return None
        host, path = m.group("host"), m.group("path")
    segments = [s for s in path.split("/") if s]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][: -len(".git")]
    segments = [s for s in segments if s]
    if not host or not segments:
        return None
    return host.lower(), tuple(segments)


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits, else a prefix and 8 hex of its SHA-256: stable, and distinct
    contexts stay distinct."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return text[: max(limit - 9, 0)] + "~" + digest


def render_context(template: str, values: Mapping[str, str], limit: int) -> str:
    return shorten(template.format_map(dict(values)), limit)


def check_template(value: str, path: str, required: Sequence[str] = ()) -> str:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as exc:
        raise ConfigError(path, f"not a valid template: {exc}") from None
    unknown = sorted(names - CONTEXT_FIELDS)
    if unknown:
        raise ConfigError(
            path, f"unknown field {{{unknown[0]}}} (known: {', '.join(sorted(CONTEXT_FIELDS))})"
        )
    for name in required:
        if name not in names:
            raise ConfigError(
                path, f"must contain {{{name}}} so statuses do not overwrite each other"
            )
    return value


@dataclass(frozen=True, slots=True)
class CommitStatusOptions:
    """Options every commit-status destination takes (plus ``extra``, the host's own)."""

    base_url: str
    token: str = field(repr=False)
    username: str = ""  # Bitbucket Cloud app passwords: basic auth with this user
    repository: str = ""  # overrides the repository parsed from the source URL
    hosts: tuple[str, ...] = ()  # Git hosts this destination serves (from base_url if empty)
    fleet: bool = True
    per_cluster: bool = False
    fleet_context: str = DEFAULT_FLEET_CONTEXT
    cluster_context: str = DEFAULT_CLUSTER_CONTEXT
    target_url: str = ""
    objects: tuple[str, ...] = ()  # "Kind/namespace/name" glob patterns; empty: every object
    extra: Mapping[str, Any] = field(default_factory=dict)


class HostApi(Protocol):
    """One Git host's commit-status API (pure parts)."""

    name: str
    default_base_url: str
    default_hosts: tuple[str, ...]
    max_context: int
    max_description: int
    extra_keys: tuple[str, ...]

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None: ...

    def build(
        self, status: CommitStatus, repo: RepoRef, options: CommitStatusOptions
    ) -> OutboundRequest: ...

    def classify(self, response: HttpResponse, now: float) -> Outcome: ...

    def violations(self, requests: Sequence[OutboundRequest]) -> list[str]: ...

    def parse_extra(self, raw: Mapping[str, Any], path: str) -> Mapping[str, Any]: ...


class HostApiDefaults:
    """What most hosts' APIs have in common; a host module overrides only what differs:
    ``owner/repo`` repositories, the common answer classification, no options of its own, no
    cap on statuses per commit and context, contexts and descriptions up to 255 characters."""

    name: str
    default_base_url: str
    default_hosts: tuple[str, ...] = ()
    max_context = 255
    max_description = 255
    max_posts_per_context = 0
    extra_keys: tuple[str, ...] = ()

    def repo(self, host: str, path: tuple[str, ...]) -> RepoRef | None:
        return RepoRef(host, path) if len(path) == 2 else None

    def classify(self, response: HttpResponse, now: float) -> Outcome:
        return classify_common(response, now)

    def parse_extra(self, raw: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        return {}


def url_segments(repo: RepoRef) -> tuple[str, ...]:
    """The repository's path segments, each escaped for use inside an API URL."""
    return tuple(quote(p, safe="") for p in repo.path)


def json_request(
    url: str, headers: Mapping[str, str], body: Mapping[str, Any], purpose: str
) -> OutboundRequest:
    """A JSON POST with deterministic bytes (sorted keys, UTF-8 kept as is)."""
    return OutboundRequest(
        url=url,
        headers={**headers, "Content-Type": "application/json"},
        body=json.dumps(body, sort_keys=True, ensure_ascii=False).encode(),
        purpose=purpose,
    )


def github_style_body(status: CommitStatus, max_description: int) -> dict[str, Any]:
    """The body GitHub's statuses API takes, and Gitea/Forgejo's copy of it."""
    body: dict[str, Any] = {
        "state": status.state,
        "context": status.context,
        "description": status.description[:max_description],
    }
    if status.target_url:
        body["target_url"] = status.target_url
    return body


def serves(api: HostApi, options: CommitStatusOptions) -> tuple[str, ...]:
    if options.hosts:
        return options.hosts
    base_host = (urlsplit(options.base_url).hostname or "").lower()
    if api.default_hosts and options.base_url.rstrip("/") == api.default_base_url.rstrip("/"):
        return api.default_hosts
    return (base_host,)


def resolve_repo(
    api: HostApi, options: CommitStatusOptions, source_url: str
) -> tuple[RepoRef | None, str]:
    """The repository a status goes to, or None and the counted reason why not."""
    if options.repository:
        host = serves(api, options)[0] if serves(api, options) else ""
        repo = api.repo(host, tuple(s for s in options.repository.split("/") if s))
        return (repo, "") if repo is not None else (None, "unknown_repository")
    split = split_git_url(source_url)
    if split is None:
        return None, "unknown_repository"
    host, path = split
    if not any(
        host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in serves(api, options)
    ):
        return None, "other_host"
    repo = api.repo(host, path)
    return (repo, "") if repo is not None else (None, "unknown_repository")


def classify_common(response: HttpResponse, now: float) -> Outcome:
    retry_after = parse_retry_after(header(response.headers, "Retry-After"), now)
    outcome = classify_status(response.status, retry_after)
    if isinstance(outcome, Fail):
        snippet = truncate_utf8(response.body.decode("utf-8", "replace"), 300)
        return Fail(f"{outcome.reason}: {snippet}" if snippet else outcome.reason, response.status)
    return outcome


def parse_options(
    api: HostApi, raw: Mapping[str, Any], path: str, base: Path
) -> CommitStatusOptions:
    """The shared keys, the token from a file or variable, then the host's own keys."""
    check_keys(
        raw,
        path,
        (
            "base_url",
            "token_file",
            "token_env",
            "username",
            "repository",
            "hosts",
            "fleet",
            "per_cluster",
            "fleet_context",
            "cluster_context",
            "target_url",
            "objects",
            *api.extra_keys,
        ),
    )
    token = read_secret(raw, path, "token", required=True, base_dir=base)
    assert token is not None
    base_url = str_(raw.get("base_url"), f"{path}.base_url", default=api.default_base_url)
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}.base_url", "expected an http:// or https:// URL")
    target_url = str_(raw.get("target_url"), f"{path}.target_url", default="")
    if target_url and not target_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}.target_url", "expected an http:// or https:// URL")
    repository = str_(raw.get("repository"), f"{path}.repository", default="")
    if repository and api.repo("", tuple(s for s in repository.split("/") if s)) is None:
        raise ConfigError(f"{path}.repository", f"not a {api.name} repository path")
    return CommitStatusOptions(
        base_url=base_url.rstrip("/"),
        token=token,
        username=str_(raw.get("username"), f"{path}.username", default=""),
        repository=repository,
        hosts=tuple(h.lower() for h in str_list(raw.get("hosts"), f"{path}.hosts")),
        fleet=bool_(raw.get("fleet"), f"{path}.fleet", True),
        per_cluster=bool_(raw.get("per_cluster"), f"{path}.per_cluster", False),
        fleet_context=check_template(
            str_(raw.get("fleet_context"), f"{path}.fleet_context", default=DEFAULT_FLEET_CONTEXT),
            f"{path}.fleet_context",
        ),
        cluster_context=check_template(
            str_(
                raw.get("cluster_context"),
                f"{path}.cluster_context",
                default=DEFAULT_CLUSTER_CONTEXT,
            ),
            f"{path}.cluster_context",
            required=("cluster",),
        ),
        target_url=target_url,
        objects=str_list(raw.get("objects"), f"{path}.objects"),
        extra=api.parse_extra(raw, path),
    )


# ---- routed notifications: one per-cluster status per event naming a commit ----


def statuses_for(
    notification: Notification, api: HostApi, options: CommitStatusOptions
) -> list[tuple[CommitStatus, str]]:
    """(status, repository override or source URL) per event with a commit; pure."""
    out: dict[tuple[str, str], tuple[CommitStatus, str]] = {}
    for event in notification.events:
        state = _EVENT_STATES.get(str(event.get("status", "")))
        sha = str(event.get("commit") or "") or commit_sha(str(event.get("revision", "")))
        if state is None or not sha:
            continue
        annotations = event.get("annotations") or {}
        where = (
            str(annotations.get(REPOSITORY_ANNOTATION, ""))
            if isinstance(annotations, Mapping)
            else ""
        )
        values = {k: str(event.get(k, "")) for k in CONTEXT_FIELDS}
        context = render_context(options.cluster_context, values, api.max_context)
        reason = str(event.get("reason", ""))
        description = (
            f"{reason}: {event.get('message', '')}" if reason else str(event.get("message", ""))
        )
        status = CommitStatus(
            sha=sha,
            context=context,
            state=state,
            description=truncate_chars(description or state, api.max_description),
            target_url=options.target_url,
        )
        out[(sha, context)] = (status, where)  # the newest event per commit and context wins
    return list(out.values())


def truncate_chars(text: str, limit: int) -> str:
    """At most ``limit`` characters (hosts count characters, not bytes)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _requests(
    notification: Notification, api: HostApi, options: CommitStatusOptions
) -> tuple[list[OutboundRequest], int]:
    requests: list[OutboundRequest] = []
    skipped = 0
    for status, where in statuses_for(notification, api, options):
        opts = replace(options, repository=options.repository or where)
        repo, _why = resolve_repo(api, opts, "")
        if repo is None:
            skipped += 1
            continue
        requests.append(api.build(status, repo, opts))
    return requests, skipped


class CommitStatusProvider:
    def __init__(self, destination: str, api: HostApi, options: CommitStatusOptions) -> None:
        self.destination = destination
        self.api = api
        self.options = options

    async def send(
        self, notification: Notification, ctx: ProviderContext, timeout_seconds: float
    ) -> Outcome:
        requests, skipped = _requests(notification, self.api, self.options)
        if not requests:
            return Ok(f"no commit status to set ({skipped} without a repository)")
        for request in requests:
            try:
                response = await ctx.http.post(
                    request.url, request.body, request.headers, timeout_seconds
                )
            except TransportError as exc:
                return Retry(str(exc))
            outcome = redact(self.api.classify(response, ctx.clock()), self.options)
            if not isinstance(outcome, Ok):
                return outcome
        return Ok(f"{len(requests)} commit statuses set")


def redact(outcome: Outcome, options: CommitStatusOptions) -> Outcome:
    """Error bodies may echo the request (token included): mask it before it is stored."""
    if isinstance(outcome, Fail):
        return replace(outcome, reason=mask_secrets(outcome.reason, (options.token,)))
    if isinstance(outcome, Retry):
        return replace(outcome, reason=mask_secrets(outcome.reason, (options.token,)))
    return outcome


SAMPLE_SHA = "8027230c6b4d0a2f3f1b9f1d3c2e5a7b9d0e1f2a"


class CommitStatusType:
    """The registry entry for one host; see ``HostApi``."""

    def __init__(self, api: HostApi, sample_repository: str, cases: Sequence[ResponseCase]) -> None:
        self.api = api
        self.name = api.name
        self._sample_repository = sample_repository
        self._cases = tuple(cases)

    def parse_options(self, raw: Mapping[str, Any], path: str, base: Path) -> CommitStatusOptions:
        return parse_options(self.api, raw, path, base)

    def create(self, destination: str, options: Any) -> Provider:
        assert isinstance(options, CommitStatusOptions)
        return CommitStatusProvider(destination, self.api, options)

    def preview(self, options: Any, notification: Notification) -> Preview:
        requests, _ = _requests(_with_commit(notification), self.api, options)
        return Preview(requests=requests, secrets=(options.token,))

    def conformance(self) -> Conformance:
        token = f"{self.name}-token-5ecret"
        options = CommitStatusOptions(
            base_url=self.api.default_base_url,
            token=token,
            repository=self._sample_repository,
            extra=self.api.parse_extra({}, "sample"),
        )

        def options_for(base_url: str) -> CommitStatusOptions:
            return replace(options, base_url=base_url)

        def build(n: Notification) -> list[OutboundRequest]:
            return _requests(_with_commit(n), self.api, options)[0]

        return Conformance(
            options=options,
            secrets=(token,),
            build=build,
            classify=self.api.classify,
            violations=self.api.violations,
            options_for=options_for,
            ok_response=HttpResponse(201, {}, b"{}"),
            cases=self._cases,
        )


def _with_commit(n: Notification) -> Notification:
    """The notification as if every event named a commit and had a statusable state: the
    conformance suite and previews show what a commit-bearing event would send."""
    events = []
    for e in n.events:
        event = dict(e)
        if not (event.get("commit") or commit_sha(str(event.get("revision", "")))):
            event["commit"] = SAMPLE_SHA
        if str(event.get("status", "")) not in _EVENT_STATES:
            event["status"] = "failing"
        events.append(event)
    if not events:
        events.append({"commit": SAMPLE_SHA, "status": "failing", "kind": "Kustomization"})
    return replace(n, events=events)


Builder = Callable[[CommitStatus, RepoRef, CommitStatusOptions], OutboundRequest]
