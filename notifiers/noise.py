"""Noise control per route: ``failing_for`` and ``min_events``. Pure; the clock is an argument.

The oldest request about Flux notifications is "only tell me after N failures in M minutes"
(one incident produced 22 messages in 3 seconds). A route can say:

- ``failing_for: 5m``: a failure is held for that long and notified only if the object is still
  failing then; a recovery inside the window cancels both, so neither reaches the channel.
- ``min_events: N`` (within ``min_events_window``, default 10m): a failure is notified once N
  bad events of the object arrived within the window (Flux's repeats count, although
  de-duplication drops them as messages); if fewer arrive before the window ends, it is dropped.

A held failure is an ordinary delivery in a group of its own (``held_group_key``: the route's
group key plus the policy and the object), due when the hold ends, so it is exactly as durable
as every other delivery; the outbox asks ``release_held`` at that moment and
``recovery_cancels`` when a recovery arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HELD_MARK = "|held "
DEFAULT_MIN_EVENTS_WINDOW = 600.0


@dataclass(frozen=True, slots=True)
class NoisePolicy:
    failing_for: float = 0.0
    min_events: int = 0
    min_events_window: float = DEFAULT_MIN_EVENTS_WINDOW

    @property
    def active(self) -> bool:
        return self.failing_for > 0 or self.min_events > 1

    def hold_seconds(self) -> float:
        """How long a new failure waits before it may be notified."""
        window = self.min_events_window if self.min_events > 1 else 0.0
        return max(self.failing_for, window)

    def explain(self) -> str:
        parts = []
        if self.failing_for > 0:
            parts.append(f"failures held {self.failing_for:g}s and sent only if still failing")
        if self.min_events > 1:
            parts.append(
                f"sent once {self.min_events} failures arrive within {self.min_events_window:g}s"
            )
        return "; ".join(parts)


def count_within(times: Sequence[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t <= end)


def hold_until(policy: NoisePolicy, *, bad: bool, now: float) -> float | None:
    """When a delivery for this event may go out, or None when it is not held at all."""
    if not bad or not policy.active:
        return None
    return now + policy.hold_seconds()


def ready_early(
    policy: NoisePolicy, bad_times: Sequence[float], held_at: float, now: float
) -> bool:
    """A failure held only by ``min_events`` goes out as soon as the count is reached."""
    if policy.failing_for > 0 or policy.min_events <= 1:
        return False
    return count_within(bad_times, held_at, now) >= policy.min_events


def release_held(
    policy: NoisePolicy, *, still_bad: bool, bad_times: Sequence[float], held_at: float
) -> tuple[bool, str]:
    """At the end of the hold: send, or drop with the reason (counted and shown)."""
    if not still_bad:
        return False, "recovered_within_failing_for"
    if policy.min_events > 1:
        end = held_at + policy.min_events_window
        if count_within(bad_times, held_at, end) < policy.min_events:
            return False, "below_min_events"
    return True, "held_then_sent"


def recovery_cancels(held_due: float | None, now: float) -> bool:
    """A recovery while the failure is still held cancels both: the channel hears nothing."""
    return held_due is not None and now < held_due


def held_group_key(group_key: str, policy: NoisePolicy, object_key: str) -> str:
    """The group a held failure waits in; the policy and object travel in the key, durably."""
    return (
        f"{group_key}{HELD_MARK}failing_for={policy.failing_for:g} "
        f"min_events={policy.min_events} window={policy.min_events_window:g} "
        f"object={object_key}"
    )


def parse_held_group_key(group_key: str) -> tuple[NoisePolicy, str] | None:
    """The policy and object of a held group (after a restart), or None for other groups."""
    if HELD_MARK not in group_key:
        return None
    tail = group_key.rsplit(HELD_MARK, 1)[1]
    fields: dict[str, str] = {}
    for part in tail.split(" ", 3):
        name, _, value = part.partition("=")
        fields[name] = value
    try:
        policy = NoisePolicy(
            failing_for=float(fields["failing_for"]),
            min_events=int(fields["min_events"]),
            min_events_window=float(fields["window"]),
        )
    except (KeyError, ValueError):
        return None
    return policy, fields.get("object", "")
