"""Owner routing: which team owns an object, and so which destinations hear about it.

Teams own their channel without editing the central route tree: the owner comes, in this order,
from the object's ``fluxwatch.io/owner`` annotation, its tenant (``toolkit.fluxcd.io/tenant``),
or a catalog (a CMDB export) mapping namespaces, optionally per cluster, to teams. An explicit
``fluxwatch.io/destinations`` annotation names destinations directly. Pure functions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

OWNER_ANNOTATION = "fluxwatch.io/owner"
DESTINATIONS_ANNOTATION = "fluxwatch.io/destinations"
TENANT_LABEL = "toolkit.fluxcd.io/tenant"


@dataclass(frozen=True, slots=True)
class Team:
    name: str
    destinations: tuple[str, ...]
    namespaces: tuple[str, ...] = ()  # fnmatch patterns
    clusters: tuple[str, ...] = ()  # fnmatch patterns; empty = every cluster
    tenants: tuple[str, ...] = ()  # tenant names this team answers for besides its own name


@dataclass(frozen=True, slots=True)
class OwnersConfig:
    teams: tuple[Team, ...] = ()

    def team(self, name: str) -> Team | None:
        for team in self.teams:
            if team.name == name:
                return team
        return None


@dataclass(frozen=True, slots=True)
class Owner:
    """The resolved owner: team name ("" if none), its destinations and why."""

    team: str
    destinations: tuple[str, ...]
    why: str


def resolve_owner(
    owners: OwnersConfig,
    *,
    cluster: str,
    namespace: str,
    tenant: str,
    annotations: Mapping[str, str],
    known_destinations: Mapping[str, object],
) -> Owner:
    explicit_known: tuple[str, ...] = ()
    note = ""
    listed = annotations.get(DESTINATIONS_ANNOTATION, "") if annotations else ""
    if listed:
        explicit = tuple(d.strip() for d in listed.split(",") if d.strip())
        # Only destinations the operator defined may be named: an annotation must never be able
        # to point the bridge at an arbitrary URL.
        explicit_known = tuple(d for d in explicit if d in known_destinations)
        unknown = sorted(set(explicit) - set(explicit_known))
        note = (
            f"; unknown destinations in annotation ignored: {', '.join(unknown)}" if unknown else ""
        )

    def done(team: Team | None, why: str) -> Owner:
        if team is None and not explicit_known:  # the common case at intake: nothing to merge
            return Owner(team="", destinations=(), why=why + note)
        dests = explicit_known + tuple(
            d for d in (team.destinations if team else ()) if d not in explicit_known
        )
        name = team.name if team else ""
        if explicit_known:
            why = f"annotation {DESTINATIONS_ANNOTATION}" + (f"; {why}" if team else "")
        return Owner(team=name, destinations=dests, why=why + note)

    annotated = annotations.get(OWNER_ANNOTATION, "").strip() if annotations else ""
    if annotated:
        team = owners.team(annotated)
        if team is not None:
            return done(team, f"annotation {OWNER_ANNOTATION}={annotated}")
        note += f"; owner {annotated!r} from annotation is not in the catalog"
    if tenant:
        for team in owners.teams:
            if team.name == tenant or tenant in team.tenants:
                return done(team, f"tenant {tenant}")
    if namespace:
        for team in owners.teams:
            if any(fnmatchcase(namespace, p) for p in team.namespaces) and (
                not team.clusters or any(fnmatchcase(cluster, p) for p in team.clusters)
            ):
                return done(team, f"catalog: namespace {namespace} belongs to {team.name}")
    return done(None, "no owner found")
