"""The routing part of the ``bridge:`` section: the route tree (matchers, grouping, timers,
noise control, fleet rollouts) and the named mute time intervals it refers to.

Every error names the key path, as in ``notifiers.config``, which calls these with the
destinations already parsed, so a route naming an unknown destination is caught here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifiers.configkit import (
    ConfigError,
    bool_,
    check_keys,
    int_,
    mapping,
    parse_duration,
    str_,
    str_list,
)
from notifiers.noise import NoisePolicy
from notifiers.routing import Matcher, RouteNode, TimeInterval, parse_matcher, parse_time_range

_ROUTE_KEYS = (
    "matchers",
    "destinations",
    "continue",
    "group_by",
    "group_wait",
    "group_interval",
    "mute_time_intervals",
    "owner",
    "routes",
    "name",
    "failing_for",
    "min_events",
    "min_events_window",
    "fleet_rollouts",
)


def parse_route(
    value: Any,
    path: str,
    parent: RouteNode | None,
    destinations: Mapping[str, object],
    intervals: Mapping[str, tuple[TimeInterval, ...]],
) -> RouteNode:
    raw = mapping(value, path)
    check_keys(raw, path, _ROUTE_KEYS)
    matchers: list[Matcher] = []
    for i, text in enumerate(str_list(raw.get("matchers"), f"{path}.matchers")):
        try:
            matchers.append(parse_matcher(text))
        except ValueError as exc:
            raise ConfigError(f"{path}.matchers[{i}]", str(exc)) from None
    dests = str_list(raw.get("destinations"), f"{path}.destinations")
    for i, dest in enumerate(dests):
        if dest not in destinations:
            raise ConfigError(f"{path}.destinations[{i}]", f"unknown destination {dest!r}")
    mutes = str_list(raw.get("mute_time_intervals"), f"{path}.mute_time_intervals")
    for i, mute in enumerate(mutes):
        if mute not in intervals:
            raise ConfigError(f"{path}.mute_time_intervals[{i}]", f"unknown time interval {mute!r}")
    inherited_group_by = parent.group_by if parent is not None else ("root_cause", "status")
    group_by = (
        str_list(raw.get("group_by"), f"{path}.group_by")
        if "group_by" in raw
        else inherited_group_by
    )
    if "..." in group_by and len(group_by) > 1:
        raise ConfigError(f"{path}.group_by", "'...' (no grouping) stands alone")
    node = RouteNode(
        path=path,
        name=str_(raw.get("name"), f"{path}.name", default=path),
        matchers=tuple(matchers),
        destinations=dests,
        continue_=bool_(raw.get("continue"), f"{path}.continue", False),
        group_by=group_by,
        group_wait=parse_duration(
            raw.get("group_wait"), f"{path}.group_wait", parent.group_wait if parent else 30.0
        ),
        group_interval=parse_duration(
            raw.get("group_interval"),
            f"{path}.group_interval",
            parent.group_interval if parent else 300.0,
        ),
        mute_time_intervals=mutes
        if "mute_time_intervals" in raw
        else (parent.mute_time_intervals if parent else ()),
        owner=bool_(raw.get("owner"), f"{path}.owner", parent.owner if parent else False),
        noise=_parse_noise(raw, path, parent.noise if parent else NoisePolicy()),
        fleet_rollouts=bool_(
            raw.get("fleet_rollouts"),
            f"{path}.fleet_rollouts",
            parent.fleet_rollouts if parent else False,
        ),
    )
    if parent is None and matchers:
        raise ConfigError(
            f"{path}.matchers", "the root route matches everything; put matchers on child routes"
        )
    children_raw = raw.get("routes")
    if children_raw is not None and not isinstance(children_raw, list):
        raise ConfigError(f"{path}.routes", "expected a list of routes")
    children = tuple(
        parse_route(child, f"{path}.routes[{i}]", node, destinations, intervals)
        for i, child in enumerate(children_raw or [])
    )
    return node.with_children(children)


def _parse_noise(raw: Mapping[str, Any], path: str, inherited: NoisePolicy) -> NoisePolicy:
    """``failing_for`` / ``min_events`` / ``min_events_window``, inherited like the timers."""
    return NoisePolicy(
        failing_for=parse_duration(
            raw.get("failing_for"), f"{path}.failing_for", inherited.failing_for
        ),
        min_events=int_(raw.get("min_events"), f"{path}.min_events", inherited.min_events),
        min_events_window=parse_duration(
            raw.get("min_events_window"),
            f"{path}.min_events_window",
            inherited.min_events_window,
        ),
    )


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_time_intervals(value: Any, path: str) -> tuple[TimeInterval, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(path, "expected a non-empty list of intervals")
    result: list[TimeInterval] = []
    for i, item in enumerate(value):
        ipath = f"{path}[{i}]"
        raw = mapping(item, ipath)
        check_keys(raw, ipath, ("weekdays", "times", "location"))
        days: set[int] = set()
        for j, spec in enumerate(str_list(raw.get("weekdays"), f"{ipath}.weekdays")):
            start, _, end = spec.lower().partition(":")
            if start not in _WEEKDAYS or (end and end not in _WEEKDAYS):
                raise ConfigError(
                    f"{ipath}.weekdays[{j}]",
                    f"expected a weekday or range like monday:friday, got {spec!r}",
                )
            a, b = _WEEKDAYS.index(start), _WEEKDAYS.index(end or start)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        times: list[tuple[int, int]] = []
        raw_times = raw.get("times")
        if raw_times is not None and not isinstance(raw_times, list):
            raise ConfigError(f"{ipath}.times", "expected a list")
        for j, t in enumerate(raw_times or []):
            tpath = f"{ipath}.times[{j}]"
            tr = mapping(t, tpath)
            check_keys(tr, tpath, ("start_time", "end_time"))
            try:
                times.append(
                    parse_time_range(
                        str_(tr.get("start_time"), f"{tpath}.start_time"),
                        str_(tr.get("end_time"), f"{tpath}.end_time"),
                    )
                )
            except ValueError as exc:
                raise ConfigError(tpath, str(exc)) from None
        location = str_(raw.get("location"), f"{ipath}.location", default="UTC")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(location)
        except Exception:  # ZoneInfoNotFoundError, ValueError for odd keys
            raise ConfigError(f"{ipath}.location", f"unknown time zone {location!r}") from None
        result.append(TimeInterval(weekdays=frozenset(days), times=tuple(times), location=location))
    return tuple(result)
