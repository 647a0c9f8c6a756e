"""Route-tree decisions as tables: matchers, continue, inheritance, owners, mute windows, groups."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from notifiers.config import config_from_mapping
from notifiers.model import Event
from notifiers.routing import parse_matcher, route_event

TREE = """
bridge:
  time_intervals:
    weekend:
      - weekdays: [saturday:sunday]
    nights:
      - times: [{start_time: "22:00", end_time: "06:00"}]
  owners:
    teams:
      - name: payments
        namespaces: [payments, "payments-*"]
        destinations: [payments-hook]
      - name: team-a
        destinations: [team-a-hook]
      - name: edge
        namespaces: [ingress]
        clusters: ["edge-*"]
        destinations: [edge-hook]
  route:
    destinations: [default]
    group_wait: 10s
    routes:
      - name: prod-failures
        matchers: ['cluster=~"prod-.*"', 'severity="error"']
        destinations: [oncall]
        continue: true
        routes:
          - name: prod-helm
            matchers: ['kind="HelmRelease"']
            destinations: [helm-oncall]
      - name: owners
        matchers: ['owner!=""']
        owner: true
      - name: not-staging
        matchers: ['cluster!~"staging-.*"', 'env="qa"']
        destinations: [qa]
      - name: quiet-weekend
        matchers: ['namespace="batch"']
        destinations: [batch]
        mute_time_intervals: [weekend]
  destinations:
    default: {type: console}
    oncall: {type: console}
    helm-oncall: {type: console}
    qa: {type: console}
    batch: {type: console}
    payments-hook: {type: console}
    team-a-hook: {type: console}
    edge-hook: {type: console}
    extra-hook: {type: console}
"""

WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()
SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()


def event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "id": "e1",
        "source": "flux",
        "type": "event",
        "cluster": "dev-1",
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "status": "failing",
        "severity": "info",
        "reason": "HealthCheckFailed",
        "message": "",
        "received_at": 0.0,
        "occurred_at": 0.0,
    }
    fields.update(overrides)
    return Event(**fields)


CASES = [
    ("root-only", event(), WEDNESDAY_NOON, ["default"]),
    ("regex-and-equality", event(cluster="prod-eu", severity="error"), WEDNESDAY_NOON, ["oncall"]),
    (
        "nested-child-wins-then-continue",
        event(cluster="prod-eu", severity="error", kind="HelmRelease"),
        WEDNESDAY_NOON,
        ["helm-oncall"],
    ),
    (
        "continue-reaches-owner-route",
        event(cluster="prod-eu", severity="error", namespace="payments"),
        WEDNESDAY_NOON,
        ["oncall", "payments-hook"],
    ),
    ("owner-from-catalog-glob", event(namespace="payments-eu"), WEDNESDAY_NOON, ["payments-hook"]),
    ("owner-from-tenant", event(tenant="team-a"), WEDNESDAY_NOON, ["team-a-hook"]),
    (
        "owner-from-annotation",
        event(annotations={"fluxwatch.io/owner": "team-a"}),
        WEDNESDAY_NOON,
        ["team-a-hook"],
    ),
    (
        "destinations-annotation-adds-known-only",
        event(
            annotations={
                "fluxwatch.io/owner": "team-a",
                "fluxwatch.io/destinations": "extra-hook, https://evil.example",
            }
        ),
        WEDNESDAY_NOON,
        ["extra-hook", "team-a-hook"],
    ),
    (
        "catalog-cluster-scoped-miss",
        event(namespace="ingress", cluster="core-1"),
        WEDNESDAY_NOON,
        ["default"],
    ),
    (
        "catalog-cluster-scoped-hit",
        event(namespace="ingress", cluster="edge-7"),
        WEDNESDAY_NOON,
        ["edge-hook"],
    ),
    ("negative-regex-and-metadata-label", event(metadata={"env": "qa"}), WEDNESDAY_NOON, ["qa"]),
    (
        "negative-regex-excludes",
        event(cluster="staging-1", metadata={"env": "qa"}),
        WEDNESDAY_NOON,
        ["default"],
    ),
    ("mute-window-inactive", event(namespace="batch"), WEDNESDAY_NOON, ["batch"]),
    ("mute-window-active", event(namespace="batch"), SATURDAY_NOON, []),
]


@pytest.mark.parametrize(
    ("ev", "now", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_route_tree(ev: Event, now: float, expected: list[str]) -> None:
    config = config_from_mapping(yaml.safe_load(TREE))
    decision = route_event(
        config.route,
        ev,
        owners=config.owners,
        known_destinations=config.destinations,
        time_intervals=config.time_intervals,
        now=now,
    )
    assert [t.destination for t in decision.targets] == expected
    assert decision.explanation  # always explains itself
    # Intake routes without the explanation: the decision itself must not change.
    quiet = route_event(
        config.route,
        ev,
        owners=config.owners,
        known_destinations=config.destinations,
        time_intervals=config.time_intervals,
        now=now,
        explain=False,
    )
    assert (quiet.targets, quiet.owner, quiet.muted) == (
        decision.targets,
        decision.owner,
        decision.muted,
    )
    assert quiet.explanation == ()


def test_muted_destinations_are_reported() -> None:
    config = config_from_mapping(yaml.safe_load(TREE))
    decision = route_event(
        config.route,
        event(namespace="batch"),
        owners=config.owners,
        known_destinations=config.destinations,
        time_intervals=config.time_intervals,
        now=SATURDAY_NOON,
    )
    assert decision.muted == ("batch",)
    assert any("muted by weekend" in line for line in decision.explanation)


GROUP_CASES = [
    ("default-root-cause-and-status", None, ["dev-1/Kustomization/apps/podinfo", "failing"]),
    ("by-revision-across-clusters", ["kind", "namespace", "name", "revision"], ["main@sha1:abc"]),
]


@pytest.mark.parametrize(
    ("group_by", "needles"), [c[1:] for c in GROUP_CASES], ids=[c[0] for c in GROUP_CASES]
)
def test_group_keys(group_by: list[str] | None, needles: list[str]) -> None:
    route: dict[str, Any] = {"destinations": ["d"]}
    if group_by is not None:
        route["group_by"] = group_by
    config = config_from_mapping(
        {"bridge": {"route": route, "destinations": {"d": {"type": "console"}}}}
    )
    decision = route_event(
        config.route,
        event(revision="main@sha1:abc"),
        owners=config.owners,
        known_destinations=config.destinations,
        time_intervals={},
        now=0,
    )
    key = decision.targets[0].group_key
    for needle in needles:
        assert needle in key
    # The same failure on another cluster groups together only when cluster is not in group_by.
    other = (
        route_event(
            config.route,
            event(cluster="dev-2", revision="main@sha1:abc"),
            owners=config.owners,
            known_destinations=config.destinations,
            time_intervals={},
            now=0,
        )
        .targets[0]
        .group_key
    )
    assert (other == key) == (group_by is not None)


def test_root_cause_groups_dependents_with_their_source() -> None:
    config = config_from_mapping(
        {"bridge": {"route": {"destinations": ["d"]}, "destinations": {"d": {"type": "console"}}}}
    )
    rc = {
        "kind": "GitRepository",
        "namespace": "flux-system",
        "name": "repo",
        "reason": "FetchFailed",
    }
    source = event(kind="GitRepository", namespace="flux-system", name="repo")
    dependent = event(name="app-7", root_cause=rc)
    keys = {
        route_event(
            config.route,
            e,
            owners=config.owners,
            known_destinations=config.destinations,
            time_intervals={},
            now=0,
        )
        .targets[0]
        .group_key
        for e in (source, dependent)
    }
    assert len(keys) == 1


MATCHERS = [
    ('cluster="prod"', "prod", True),
    ('cluster="prod"', "prod-2", False),
    ("cluster!=prod", "dev", True),
    ("cluster=~prod-.*", "prod-2", True),
    ("cluster=~prod", "prod-2", False),  # anchored, as in Alertmanager
    ('cluster!~"prod-.*"', "prod-2", False),
    ("cluster!~'prod-.*'", "dev", True),
]


@pytest.mark.parametrize(("text", "value", "hit"), MATCHERS, ids=[m[0] for m in MATCHERS])
def test_matcher_operators(text: str, value: str, hit: bool) -> None:
    assert parse_matcher(text).matches(value) is hit


@pytest.mark.parametrize("text", ["cluster", "=x", "cluster=~(", "9x=1"], ids=str)
def test_bad_matchers_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|invalid"):
        parse_matcher(text)


FLEET_TREE = """
bridge:
  route:
    destinations: [default]
    routes:
      - name: apps-team
        matchers: ['namespace="apps"']
        destinations: [oncall]
      - name: releases
        matchers: ['kind="Kustomization"']
        destinations: [releases]
        fleet_rollouts: true
  destinations:
    default: {type: console}
    oncall: {type: console}
    releases: {type: console}
"""

FLEET = {"source": "rollout", "type": "fleet_rollout", "cluster": "*", "status": "progressing"}
FLEET_CASES = [
    # the first matching route does not ask for fleet state: the opted-in one gets it
    ("fleet-state-skips-routes-not-opted-in", FLEET_TREE, event(**FLEET), ["releases"]),
    ("fleet-state-never-falls-to-the-root", FLEET_TREE, event(**FLEET, kind="HelmRelease"), []),
    ("ordinary-events-unchanged", FLEET_TREE, event(), ["oncall"]),
    ("opted-in-route-keeps-ordinary-events", FLEET_TREE, event(namespace="web"), ["releases"]),
    ("no-route-opted-in", TREE, event(**FLEET), []),
]


@pytest.mark.parametrize(
    ("tree", "ev", "expected"), [c[1:] for c in FLEET_CASES], ids=[c[0] for c in FLEET_CASES]
)
def test_fleet_rollout_state_reaches_only_routes_that_opt_in(
    tree: str, ev: Event, expected: list[str]
) -> None:
    config = config_from_mapping(yaml.safe_load(tree))
    decide = functools.partial(
        route_event, owners=config.owners, time_intervals=config.time_intervals
    )
    decision = decide(config.route, ev, known_destinations=config.destinations, now=WEDNESDAY_NOON)
    assert [t.destination for t in decision.targets] == expected
    if ev.source == "rollout":
        # every update carries the whole state: its own notification, never grouped
        assert all(t.group_key.endswith(f"|{ev.id}") for t in decision.targets)
