"""De-duplication on meaningful state changes, not raw events. Pure; the clock is an argument.

Flux repeats an error every retry interval and reports every successful reconcile with a new
duration in the message (fluxcd/notification-controller#445, #509), so hashing messages dedups
nothing useful. The bridge keeps, per object, the last state it notified about and decides:

- a bad state (failing, stalled, unreachable, firing) repeating the same status, reason and
  revision inside the window is dropped; a change of any of them, or the window passing, is sent;
- a good state is sent once as a *recovery* when the object was in a bad state, or once per
  revision as a *rollout*; otherwise it is routine and dropped;
- other states (progressing, suspended, ...) are sent when status or revision changes.

The state is per object, whatever the source: a Flux event and the exporter's transition about
the same change (same status, reason and revision, where a missing revision matches any) are
one notification within the window.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from notifiers.model import BAD_STATUSES, Event

GOOD_STATUSES = frozenset({"ready", "reachable", "resolved"})


@dataclass(frozen=True, slots=True)
class DedupState:
    status: str
    reason: str
    revision: str
    at: float  # when the last notification about this object was accepted
    was_bad: bool  # a recovery is owed when the object becomes good again
    applied_revision: str  # the last revision a rollout was notified for


@dataclass(frozen=True, slots=True)
class DedupDecision:
    send: bool
    reason: str  # why: new, changed, repeat_after_window, recovery, new_revision; or why not
    state: DedupState


def dedup_key(event: Event) -> str:
    # Alerts with the same name differ by label set; the fingerprint tells them apart.
    if event.source == "alertmanager" and event.uid:
        return f"{event.object_key}#{event.uid}"
    return event.object_key


def same_revision(a: str, b: str) -> bool:
    """Equal, or one side does not say: a Flux event often carries no revision where the
    exporter's transition about the same change names the attempted one."""
    return a == b or not a or not b


def decide(prev: DedupState | None, event: Event, now: float, window: float) -> DedupDecision:
    status, revision = event.status, event.revision
    if event.source == "rollout":
        # Fleet rollout state is already idempotent and paced by its publisher: every update
        # (212/500, then 260/500 with the same status) is news.
        state = DedupState(status, event.reason, revision, now, False, revision)
        return DedupDecision(True, "fleet_rollout", state)
    if status in BAD_STATUSES:
        if prev is not None and not revision and same_revision(prev.revision, revision):
            revision = prev.revision  # keep the revision the other source named
        state = DedupState(
            status, event.reason, revision, now, True, prev.applied_revision if prev else ""
        )
        if prev is None:
            return DedupDecision(True, "new", state)
        if (prev.status, prev.reason) != (status, event.reason) or not same_revision(
            prev.revision, revision
        ):
            return DedupDecision(True, "changed", state)
        if now - prev.at >= window:
            return DedupDecision(True, "repeat_after_window", state)
        return DedupDecision(False, "duplicate", prev)

    if status in GOOD_STATUSES:
        applied = revision or (prev.applied_revision if prev else "")
        state = DedupState(status, event.reason, revision, now, False, applied)
        if prev is not None and prev.was_bad:
            return DedupDecision(True, "recovery", state)
        if revision and (prev is None or prev.applied_revision != revision):
            return DedupDecision(True, "new_revision", state)
        if prev is None and not revision:
            return DedupDecision(True, "new", state)
        kept = replace(prev, status=status) if prev is not None else state
        return DedupDecision(False, "once_per_revision" if revision else "no_change", kept)

    state = DedupState(
        status,
        event.reason,
        revision,
        now,
        prev.was_bad if prev else False,
        prev.applied_revision if prev else "",
    )
    if prev is None or prev.status != status or not same_revision(prev.revision, revision):
        return DedupDecision(True, "changed" if prev else "new", state)
    if now - prev.at >= window:
        return DedupDecision(True, "repeat_after_window", state)
    return DedupDecision(False, "duplicate", prev)
