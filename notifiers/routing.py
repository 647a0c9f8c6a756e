"""The route tree: which destinations an event reaches, grouped how, and why. Pure functions.

Modelled on Alertmanager's ``dispatch/route.go``: the root matches everything, children are tried
in order depth-first, the first match wins unless it sets ``continue``, and a node with no matching
child handles the event itself. Options (group_by, timers, mute intervals, owner) are inherited.
Each decision carries a human-readable explanation for ``fluxwatch bridge routes test``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from notifiers.model import Event
from notifiers.noise import NoisePolicy
from notifiers.owners import Owner, OwnersConfig, resolve_owner

Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_./-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: Op
    value: str
    regex: re.Pattern[str] | None = None

    def matches(self, actual: str) -> bool:
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        hit = self.regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matcher(text: str) -> Matcher:
    """``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``; value may be quoted."""
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(
            f"expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX, got {text!r}"
        )
    name, op, value = match.group(1), match.group(2), match.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return Matcher(name=name, op=op, value=value, regex=regex)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """Weekdays (0 = Monday; empty = every day) and minute ranges (empty = all day) in a zone."""

    weekdays: frozenset[int] = frozenset()
    times: tuple[tuple[int, int], ...] = ()
    location: str = "UTC"

    def contains(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, tz=UTC).astimezone(ZoneInfo(self.location))
        if self.weekdays and local.weekday() not in self.weekdays:
            return False
        if not self.times:
            return True
        minute = local.hour * 60 + local.minute
        for start, end in self.times:
            if start <= end:
                if start <= minute < end:
                    return True
            elif minute >= start or minute < end:  # wraps midnight, e.g. 22:00-06:00
                return True
        return False


def parse_time_range(start: str, end: str) -> tuple[int, int]:
    def minutes(text: str) -> int:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
        if m is None or int(m.group(1)) > 24 or int(m.group(2)) > 59:
            raise ValueError(f"expected HH:MM, got {text!r}")
        value = int(m.group(1)) * 60 + int(m.group(2))
        if value > 24 * 60:
            raise ValueError(f"expected HH:MM up to 24:00, got {text!r}")
        return value

    a, b = minutes(start), minutes(end)
    if a == b:
        raise ValueError("start_time and end_time are equal")
    return a, b


@dataclass(frozen=True, slots=True)
class RouteNode:
    path: str
    name: str = ""
    matchers: tuple[Matcher, ...] = ()
    destinations: tuple[str, ...] = ()
    continue_: bool = False
    group_by: tuple[str, ...] = ("root_cause", "status")
    group_wait: float = 30.0
    group_interval: float = 300.0
    mute_time_intervals: tuple[str, ...] = ()
    owner: bool = False
    routes: tuple[RouteNode, ...] = field(default_factory=tuple)
    noise: NoisePolicy = field(default_factory=NoisePolicy)
    # Also deliver the fleet rollout state (one message per rollout, updated as clusters
    # progress); routes without it never see those events.
    fleet_rollouts: bool = False

    def with_children(self, children: tuple[RouteNode, ...]) -> RouteNode:
        return replace(self, routes=children)


# ---- field lookup ----

_FIXED_FIELDS = frozenset(
    {
        "cluster",
        "namespace",
        "kind",
        "name",
        "severity",
        "reason",
        "revision",
        "tenant",
        "status",
        "type",
        "source",
        "message",
        "commit",
        "previous_status",
        "uid",
    }
)


def field_value(event: Event, name: str, owner: str = "") -> str:
    """A matcher's view of an event; like Alertmanager, a missing label reads as ""."""
    if name == "owner":
        return owner
    if name in _FIXED_FIELDS:
        if name == "commit":
            return event.commit
        return str(getattr(event, name))
    if name in event.labels:
        return event.labels[name]
    if name in event.metadata:
        return event.metadata[name]
    return event.annotations.get(name, "")


def group_value(event: Event, name: str, owner: str) -> str:
    if name == "root_cause":
        return event.root_key
    if name == "object":
        return event.object_key
    return field_value(event, name, owner)


# ---- the decision ----


@dataclass(frozen=True, slots=True)
class Target:
    destination: str
    route: str
    group_key: str
    group_wait: float
    group_interval: float
    why: str
    noise: NoisePolicy = field(default_factory=NoisePolicy)


@dataclass(frozen=True, slots=True)
class Decision:
    targets: tuple[Target, ...]
    owner: Owner
    explanation: tuple[str, ...]
    muted: tuple[str, ...] = ()  # destinations skipped because their route was muted


FLEET_ROLLOUT_SOURCE = "rollout"  # Event.source of the bridge's own fleet rollout state


def opts_into_fleet_rollouts(node: RouteNode) -> bool:
    """Whether ``node`` or a route below it delivers fleet rollout state."""
    return node.fleet_rollouts or any(opts_into_fleet_rollouts(c) for c in node.routes)


def _walk(node: RouteNode, event: Event, owner: str, trail: list[str] | None) -> list[RouteNode]:
    """Depth-first matching nodes (the deepest match on each branch), as route.go does.

    ``trail`` collects the explanation; ``None`` skips building it (the intake path, where the
    strings would be thrown away).
    """
    matched: list[RouteNode] = []
    fleet = event.source == FLEET_ROLLOUT_SOURCE
    for child in node.routes:
        if fleet and not opts_into_fleet_rollouts(child):
            continue  # fleet rollout state reaches only the routes that ask for it
        if all(m.matches(field_value(event, m.name, owner)) for m in child.matchers):
            if trail is not None:
                shown = ", ".join(str(m) for m in child.matchers) or "(no matchers)"
                trail.append(f"{child.name}: matched {shown}")
            matched.extend(_walk(child, event, owner, trail))
            if not child.continue_:
                break
            if trail is not None:
                trail.append(f"{child.name}: continue is set, trying the next sibling")
    if not matched and node.routes and trail is not None:
        trail.append(f"{node.name}: no child route matched, this route handles the event")
    return matched or [node]


def route_event(
    root: RouteNode,
    event: Event,
    *,
    owners: OwnersConfig,
    known_destinations: Mapping[str, object],
    time_intervals: Mapping[str, Sequence[TimeInterval]],
    now: float,
    explain: bool = True,
) -> Decision:
    """Targets, owner and muted destinations for one event.

    ``explain=False`` leaves ``Decision.explanation`` empty and decides exactly the same: intake
    routes every event and never shows the trail, whose strings cost more than the decision.
    """
    owner = resolve_owner(
        owners,
        cluster=event.cluster,
        namespace=event.namespace,
        tenant=event.tenant,
        annotations=event.annotations,
        known_destinations=known_destinations,
    )
    trail: list[str] | None = (
        [f"owner: {owner.team or '(none)'} ({owner.why})"] if explain else None
    )
    nodes = _walk(root, event, owner.team, trail)
    fleet = event.source == FLEET_ROLLOUT_SOURCE
    if fleet:
        nodes = [n for n in nodes if n.fleet_rollouts]
        if trail is not None and not nodes:
            trail.append("fleet rollout state: no route sets fleet_rollouts")
    targets: list[Target] = []
    muted: list[str] = []
    seen: set[tuple[str, str]] = set()
    for node in nodes:
        dests = list(node.destinations)
        if node.owner:
            dests.extend(d for d in owner.destinations if d not in dests)
        active_mutes = [
            name
            for name in node.mute_time_intervals
            if any(interval.contains(now) for interval in time_intervals.get(name, ()))
        ]
        if active_mutes:
            if trail is not None:
                trail.append(
                    f"{node.name}: muted by {', '.join(active_mutes)}: {', '.join(dests) or '-'}"
                )
            muted.extend(dests)
            continue
        if "..." in node.group_by or fleet:
            # each fleet rollout update is its own notification: it carries the whole state
            group_key = f"{node.path}|{event.id}"
        else:
            group_key = (
                node.path
                + "|"
                + "|".join(f"{g}={group_value(event, g, owner.team)}" for g in node.group_by)
            )
        for dest in dests:
            if (dest, group_key) in seen:
                continue
            seen.add((dest, group_key))
            why = (
                "owner" if dest in owner.destinations and dest not in node.destinations else "route"
            )
            targets.append(
                Target(
                    destination=dest,
                    route=node.path,
                    group_key=group_key,
                    group_wait=node.group_wait,
                    group_interval=node.group_interval,
                    why=f"{node.name} ({why})",
                    noise=node.noise,
                )
            )
        if not dests and trail is not None:
            trail.append(f"{node.name}: no destinations")
    return Decision(
        targets=tuple(targets),
        owner=owner,
        explanation=tuple(trail) if trail is not None else (),
        muted=tuple(muted),
    )
