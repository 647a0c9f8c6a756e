"""What fleet rollouts should show, decided without I/O: the commit statuses a host should
carry for a rollout, when a change may be sent (pacing, the host's cap per commit and context),
and the fleet rollout line as an event for chat routes. ``notifiers.statuspublisher`` reads the
stored state, calls these and posts.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from notifiers.model import Event
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    HostApi,
    RepoRef,
    render_context,
    resolve_repo,
    truncate_chars,
)
from notifiers.rollouts import FailPolicy, FleetState, Identity, Rollout, Tally, fleet_state

_VERDICT_STATES = {"applied": "success", "failing": "failure", "pending": "pending"}
# fleet state -> (event status, severity, reason): what routes and chat renderers read
_FLEET_EVENT = {
    "pending": ("progressing", "info", "FleetRolloutProgressing"),
    "success": ("ready", "info", "FleetRolloutSucceeded"),
    "failure": ("failing", "error", "FleetRolloutFailed"),
}


@dataclass(frozen=True, slots=True)
class StatusTarget:
    destination: str
    api: HostApi
    options: CommitStatusOptions

    def wants(self, identity: Identity) -> bool:
        if not self.options.objects:
            return True
        text = "/".join(identity)
        return any(fnmatch.fnmatchcase(text, pattern) for pattern in self.options.objects)


@dataclass(frozen=True, slots=True)
class Posted:
    state: str
    description: str
    posts: int
    posted_at: float


def desired_statuses(
    rollout: Rollout, t: Tally, policy: FailPolicy, target: StatusTarget
) -> tuple[list[tuple[CommitStatus, RepoRef]], str]:
    """The statuses ``target`` should show for ``rollout``, or "" and the reason there are none."""
    sha = t.commit
    if not sha:
        return [], "no_commit"
    repo, why = resolve_repo(target.api, target.options, rollout.source_url)
    if repo is None:
        return [], why
    api, options = target.api, target.options
    values = {"kind": rollout.kind, "namespace": rollout.namespace, "name": rollout.name}
    out: list[tuple[CommitStatus, RepoRef]] = []
    if options.fleet:
        state, description = fleet_state(t, policy)
        out.append(
            (
                CommitStatus(
                    sha=sha,
                    context=render_context(
                        options.fleet_context, {**values, "cluster": "fleet"}, api.max_context
                    ),
                    state=state,
                    description=truncate_chars(description, api.max_description),
                    target_url=options.target_url,
                ),
                repo,
            )
        )
    if options.per_cluster:
        for c in t.clusters:
            if c.verdict == "pending" and not c.current:
                continue
            text = {
                "applied": "applied",
                "failing": f"failing: {c.reason} {c.message}".strip(),
                "pending": "waiting to apply",
            }[c.verdict]
            out.append(
                (
                    CommitStatus(
                        sha=sha,
                        context=render_context(
                            options.cluster_context,
                            {**values, "cluster": c.cluster},
                            api.max_context,
                        ),
                        state=_VERDICT_STATES[c.verdict],  # type: ignore[arg-type]
                        description=truncate_chars(text, api.max_description),
                        target_url=options.target_url,
                    ),
                    repo,
                )
            )
    return out, ""


def pace(
    state: str, text: str, posted: Posted | None, now: float, min_interval: float
) -> float | None:
    """When to send ``(state, text)`` given the last one sent; None when it says the same.

    A change of state goes at once; progress within one state waits ``min_interval`` after
    the previous send, so a 500-cluster rollout is tens of updates, not 500 (pure).
    """
    if posted is not None and (posted.state, posted.description) == (state, text):
        return None
    if posted is not None and posted.state == state:
        return max(now, posted.posted_at + min_interval)
    return now


def fleet_rollout_event(
    rollout: Rollout, t: Tally, state: FleetState, line: str, now: float, event_id: str
) -> Event:
    """The fleet rollout state as one event for the routes that set ``fleet_rollouts`` (pure).

    ``cluster`` is ``*`` (the whole fleet); the counts travel in ``metadata`` for routes and
    renderers; ``message`` is the line the chat message shows.
    """
    status, severity, reason = _FLEET_EVENT[state]
    return Event(
        id=event_id,
        source="rollout",
        type="fleet_rollout",
        cluster="*",
        kind=rollout.kind,
        namespace=rollout.namespace,
        name=rollout.name,
        status=status,
        severity=severity,
        reason=reason,
        message=line,
        received_at=now,
        occurred_at=now,
        revision=rollout.revision,
        metadata={
            "commit": t.commit,
            "fleet_state": state,
            "fleet_clusters": str(t.total),
            "applied": str(t.applied),
            "failing": str(t.failing),
            "failing_clusters": ",".join(c.cluster for c in t.failing_clusters()),
            "source_url": rollout.source_url,
            "rollout_started_at": f"{rollout.started_at:.3f}",
        },
    )


def plan_status(
    status: CommitStatus,
    posted: Posted | None,
    now: float,
    *,
    min_interval: float,
    max_posts: int,
) -> tuple[bool, float, str]:
    """(queue it?, not before, skip reason): idempotence, pacing and the host's cap; pure."""
    not_before = pace(status.state, status.description, posted, now, min_interval)
    if not_before is None:
        return False, 0.0, ""
    # Keep the last post for the final verdict: progress stops one short of the cap.
    if (
        max_posts
        and posted is not None
        and (
            posted.posts >= max_posts
            or (status.state == "pending" and posted.posts >= max_posts - 1)
        )
    ):
        return False, 0.0, "status_limit"
    return True, not_before, ""
