"""The ``bridge:`` section of ``fluxwatch.yaml``, parsed and validated at load.

Every error names the key path (``bridge.destinations.ci.url: required``); ``fluxwatch.config``,
the one loader of the file, adds the file, line and column. Secrets are read from files or
environment variables here, once, and never appear in an error message. The exporter's
``exporter:`` section is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from notifiers.configkit import (
    ConfigError,
    check_keys,
    float_,
    int_,
    mapping,
    parse_duration,
    read_secret,
    str_,
    str_list,
)
from notifiers.owners import OwnersConfig, Team
from notifiers.pgstore import PostgresSettings
from notifiers.providers import PROVIDERS, ProviderOptions
from notifiers.rolloutconfig import ExportersConfig, RolloutsConfig, parse_exporters, parse_rollouts
from notifiers.routeconfig import parse_route, parse_time_intervals
from notifiers.routing import RouteNode, TimeInterval
from plumbing.http_server import parse_address

# ---- the typed configuration ----


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between attempts and when a delivery becomes a dead letter.

    Defaults follow Alertmanager's retry stage in spirit (start small, grow, cap) but persist
    across restarts and give up only after ``max_age`` or ``max_attempts``, so a destination that
    is down for an hour still gets every event.
    """

    initial_backoff: float = 1.0
    max_backoff: float = 300.0
    multiplier: float = 2.0
    max_attempts: int = 25
    max_age: float = 86400.0
    max_retry_after: float = 3600.0  # a Retry-After beyond this is capped, not obeyed blindly


@dataclass(frozen=True, slots=True)
class CircuitBreakerPolicy:
    """Open after ``failures`` consecutive failures; probe again after ``cooldown``."""

    failures: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Token bucket per destination: ``per_second`` sustained, ``burst`` at once (0 = off)."""

    per_second: float = 0.0
    burst: int = 1


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    name: str
    type: str
    options: ProviderOptions
    timeout: float = 15.0
    max_in_flight: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit_breaker: CircuitBreakerPolicy = field(default_factory=CircuitBreakerPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)


@dataclass(frozen=True, slots=True)
class FluxIntakeConfig:
    hmac_keys: tuple[bytes, ...] = field(default=(), repr=False)  # secrets: never printed
    cluster_header: str = ""
    default_cluster: str = "default"


@dataclass(frozen=True, slots=True)
class AlertmanagerIntakeConfig:
    bearer_token: str | None = field(default=None, repr=False)  # secrets: never printed
    basic_username: str | None = None
    basic_password: str | None = field(default=None, repr=False)
    default_cluster: str = "default"


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    synchronous: str = "full"  # full: fsync per group commit; normal: survive process crashes only
    retention: float = 7 * 86400.0
    dead_retention: float = 30 * 86400.0
    prune_interval: float = 60.0
    max_events_per_notification: int = 100
    max_batch: int = 2048
    postgres: PostgresSettings | None = None  # set: the outbox lives in PostgreSQL, not SQLite


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 9095
    state_dir: Path = Path("fluxwatch-state")
    max_body_bytes: int = 1024 * 1024
    flux: FluxIntakeConfig = field(default_factory=FluxIntakeConfig)
    alertmanager: AlertmanagerIntakeConfig = field(default_factory=AlertmanagerIntakeConfig)
    dedup_window: float = 3600.0
    route: RouteNode = field(default_factory=lambda: RouteNode(path="bridge.route"))
    destinations: Mapping[str, DestinationConfig] = field(default_factory=dict)
    time_intervals: Mapping[str, tuple[TimeInterval, ...]] = field(default_factory=dict)
    owners: OwnersConfig = field(default_factory=OwnersConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    exporters: ExportersConfig = field(default_factory=ExportersConfig)
    rollouts: RolloutsConfig = field(default_factory=RolloutsConfig)


# ---- parsing ----

_BRIDGE_KEYS = (
    "listen",
    "state_dir",
    "max_body_bytes",
    "flux",
    "alertmanager",
    "dedup",
    "route",
    "destinations",
    "time_intervals",
    "owners",
    "outbox",
    "delivery",
    "exporters",
    "rollouts",
)


def config_from_mapping(
    document: Mapping[str, Any], *, base_dir: Path | None = None
) -> BridgeConfig:
    """Parse the ``bridge:`` section of an already loaded ``fluxwatch.yaml`` document."""
    base = base_dir if base_dir is not None else Path.cwd()
    bridge = mapping(document.get("bridge"), "bridge")
    check_keys(bridge, "bridge", _BRIDGE_KEYS)

    host, port = parse_listen(
        str_(bridge.get("listen"), "bridge.listen", default="127.0.0.1:9095"), "bridge.listen"
    )
    state_dir = Path(str_(bridge.get("state_dir"), "bridge.state_dir", default="fluxwatch-state"))
    if not state_dir.is_absolute():
        state_dir = base / state_dir

    delivery = mapping(bridge.get("delivery"), "bridge.delivery")
    check_keys(
        delivery, "bridge.delivery", ("retry", "circuit_breaker", "timeout", "max_in_flight")
    )
    default_retry = _parse_retry(delivery.get("retry"), "bridge.delivery.retry", RetryPolicy())
    default_breaker = _parse_breaker(
        delivery.get("circuit_breaker"), "bridge.delivery.circuit_breaker", CircuitBreakerPolicy()
    )
    default_timeout = parse_duration(delivery.get("timeout"), "bridge.delivery.timeout", 15.0)
    default_in_flight = int_(
        delivery.get("max_in_flight"), "bridge.delivery.max_in_flight", 8, minimum=1
    )

    destinations: dict[str, DestinationConfig] = {}
    raw_dests = mapping(bridge.get("destinations"), "bridge.destinations")
    for name, raw in raw_dests.items():
        destinations[name] = _parse_destination(
            name,
            raw,
            f"bridge.destinations.{name}",
            base,
            default_retry,
            default_breaker,
            default_timeout,
            default_in_flight,
        )

    owners = _parse_owners(
        bridge.get("owners"),
        "bridge.owners",
        base,
        destinations,
        default_retry,
        default_breaker,
        default_timeout,
        default_in_flight,
    )

    intervals: dict[str, tuple[TimeInterval, ...]] = {}
    for name, raw in mapping(bridge.get("time_intervals"), "bridge.time_intervals").items():
        intervals[name] = parse_time_intervals(raw, f"bridge.time_intervals.{name}")

    route = parse_route(bridge.get("route"), "bridge.route", None, destinations, intervals)

    dedup = mapping(bridge.get("dedup"), "bridge.dedup")
    check_keys(dedup, "bridge.dedup", ("window",))

    return BridgeConfig(
        listen_host=host,
        listen_port=port,
        state_dir=state_dir,
        max_body_bytes=int_(
            bridge.get("max_body_bytes"), "bridge.max_body_bytes", 1024 * 1024, minimum=1024
        ),
        flux=_parse_flux(bridge.get("flux"), "bridge.flux", base),
        alertmanager=_parse_alertmanager(bridge.get("alertmanager"), "bridge.alertmanager", base),
        dedup_window=parse_duration(dedup.get("window"), "bridge.dedup.window", 3600.0),
        route=route,
        destinations=destinations,
        time_intervals=intervals,
        owners=owners,
        outbox=_parse_outbox(bridge.get("outbox"), "bridge.outbox"),
        exporters=parse_exporters(bridge.get("exporters"), "bridge.exporters", base),
        rollouts=parse_rollouts(bridge.get("rollouts"), "bridge.rollouts"),
    )


def parse_listen(value: str, path: str) -> tuple[str, int]:
    try:
        return parse_address(value)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None


def _parse_retry(value: Any, path: str, default: RetryPolicy) -> RetryPolicy:
    raw = mapping(value, path)
    check_keys(
        raw,
        path,
        (
            "initial_backoff",
            "max_backoff",
            "multiplier",
            "max_attempts",
            "max_age",
            "max_retry_after",
        ),
    )
    policy = RetryPolicy(
        initial_backoff=parse_duration(
            raw.get("initial_backoff"), f"{path}.initial_backoff", default.initial_backoff
        ),
        max_backoff=parse_duration(
            raw.get("max_backoff"), f"{path}.max_backoff", default.max_backoff
        ),
        multiplier=float_(
            raw.get("multiplier"), f"{path}.multiplier", default.multiplier, minimum=1.0
        ),
        max_attempts=int_(
            raw.get("max_attempts"), f"{path}.max_attempts", default.max_attempts, minimum=1
        ),
        max_age=parse_duration(raw.get("max_age"), f"{path}.max_age", default.max_age),
        max_retry_after=parse_duration(
            raw.get("max_retry_after"), f"{path}.max_retry_after", default.max_retry_after
        ),
    )
    if policy.max_backoff < policy.initial_backoff:
        raise ConfigError(f"{path}.max_backoff", "must be >= initial_backoff")
    return policy


def _parse_breaker(value: Any, path: str, default: CircuitBreakerPolicy) -> CircuitBreakerPolicy:
    raw = mapping(value, path)
    check_keys(raw, path, ("failures", "cooldown"))
    return CircuitBreakerPolicy(
        failures=int_(raw.get("failures"), f"{path}.failures", default.failures, minimum=1),
        cooldown=parse_duration(raw.get("cooldown"), f"{path}.cooldown", default.cooldown),
    )


_COMMON_DEST_KEYS = ("type", "timeout", "max_in_flight", "retry", "circuit_breaker", "rate_limit")


def _parse_destination(
    name: str,
    value: Any,
    path: str,
    base: Path,
    default_retry: RetryPolicy,
    default_breaker: CircuitBreakerPolicy,
    default_timeout: float,
    default_in_flight: int,
) -> DestinationConfig:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*", name):
        raise ConfigError(path, "destination names use letters, digits and _ . : / -")
    raw = mapping(value, path)
    kind = str_(raw.get("type"), f"{path}.type", nonempty=True)
    provider = PROVIDERS.get(kind)
    if provider is None:
        raise ConfigError(
            f"{path}.type",
            f"unknown destination type {kind!r} (known: {', '.join(sorted(PROVIDERS))})",
        )
    specific = {k: v for k, v in raw.items() if k not in _COMMON_DEST_KEYS}
    try:
        options = provider.parse_options(specific, path, base)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(path, str(exc)) from None
    rate = mapping(raw.get("rate_limit"), f"{path}.rate_limit")
    check_keys(rate, f"{path}.rate_limit", ("per_second", "burst"))
    # Chat destinations have a documented pace (Slack: about 1 message/s per channel).
    default_rate, default_burst = getattr(provider, "default_rate_limit", (0.0, 1))
    return DestinationConfig(
        name=name,
        type=kind,
        options=options,
        timeout=parse_duration(raw.get("timeout"), f"{path}.timeout", default_timeout),
        max_in_flight=int_(
            raw.get("max_in_flight"), f"{path}.max_in_flight", default_in_flight, minimum=1
        ),
        retry=_parse_retry(raw.get("retry"), f"{path}.retry", default_retry),
        circuit_breaker=_parse_breaker(
            raw.get("circuit_breaker"), f"{path}.circuit_breaker", default_breaker
        ),
        rate_limit=RateLimit(
            per_second=float_(
                rate.get("per_second"), f"{path}.rate_limit.per_second", default_rate
            ),
            burst=int_(rate.get("burst"), f"{path}.rate_limit.burst", default_burst, minimum=1),
        ),
    )


def _parse_flux(value: Any, path: str, base: Path) -> FluxIntakeConfig:
    raw = mapping(value, path)
    check_keys(raw, path, ("hmac_keys_file", "hmac_keys_env", "cluster_header", "default_cluster"))
    keys_text = read_secret(raw, path, "hmac_keys", required=False, base_dir=base)
    keys: tuple[bytes, ...] = ()
    if keys_text is not None:
        # One key per line (or comma-separated in an env var): several keys allow rotation.
        keys = tuple(k.strip().encode() for k in re.split(r"[\n,]", keys_text) if k.strip())
    return FluxIntakeConfig(
        hmac_keys=keys,
        cluster_header=str_(raw.get("cluster_header"), f"{path}.cluster_header", default=""),
        default_cluster=str_(
            raw.get("default_cluster"), f"{path}.default_cluster", default="default", nonempty=True
        ),
    )


def _parse_alertmanager(value: Any, path: str, base: Path) -> AlertmanagerIntakeConfig:
    raw = mapping(value, path)
    check_keys(
        raw, path, ("bearer_token_file", "bearer_token_env", "basic_auth", "default_cluster")
    )
    token = read_secret(raw, path, "bearer_token", required=False, base_dir=base)
    user = password = None
    if raw.get("basic_auth") is not None:
        basic = mapping(raw["basic_auth"], f"{path}.basic_auth")
        check_keys(basic, f"{path}.basic_auth", ("username", "password_file", "password_env"))
        user = str_(basic.get("username"), f"{path}.basic_auth.username", nonempty=True)
        password = read_secret(
            basic, f"{path}.basic_auth", "password", required=True, base_dir=base
        )
    return AlertmanagerIntakeConfig(
        bearer_token=token,
        basic_username=user,
        basic_password=password,
        default_cluster=str_(
            raw.get("default_cluster"), f"{path}.default_cluster", default="default", nonempty=True
        ),
    )


def _parse_outbox(value: Any, path: str) -> OutboxConfig:
    raw = mapping(value, path)
    check_keys(
        raw,
        path,
        (
            "synchronous",
            "retention",
            "dead_retention",
            "prune_interval",
            "max_events_per_notification",
            "max_batch",
            "postgres",
        ),
    )
    sync = str_(raw.get("synchronous"), f"{path}.synchronous", default="full")
    if sync not in ("full", "normal"):
        raise ConfigError(f"{path}.synchronous", "expected full or normal")
    return OutboxConfig(
        synchronous=sync,
        retention=parse_duration(raw.get("retention"), f"{path}.retention", 7 * 86400.0),
        dead_retention=parse_duration(
            raw.get("dead_retention"), f"{path}.dead_retention", 30 * 86400.0
        ),
        prune_interval=parse_duration(raw.get("prune_interval"), f"{path}.prune_interval", 60.0),
        max_events_per_notification=int_(
            raw.get("max_events_per_notification"),
            f"{path}.max_events_per_notification",
            100,
            minimum=1,
        ),
        max_batch=int_(raw.get("max_batch"), f"{path}.max_batch", 2048, minimum=1),
        postgres=(
            None
            if raw.get("postgres") is None
            else _parse_postgres(raw.get("postgres"), f"{path}.postgres")
        ),
    )


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _parse_postgres(value: Any, path: str) -> PostgresSettings:
    raw = mapping(value, path)
    check_keys(
        raw,
        path,
        (
            "dsn_file",
            "dsn_env",
            "sslmode",
            "sslrootcert",
            "sslcert",
            "sslkey",
            "connect_timeout",
            "lease",
        ),
    )
    dsn_file = str_(raw.get("dsn_file"), f"{path}.dsn_file", default="")
    dsn_env = str_(raw.get("dsn_env"), f"{path}.dsn_env", default="")
    if bool(dsn_file) == bool(dsn_env):
        raise ConfigError(path, "expected exactly one of dsn_file or dsn_env")
    sslmode = str_(raw.get("sslmode"), f"{path}.sslmode", default="")
    if sslmode and sslmode not in _SSLMODES:
        raise ConfigError(f"{path}.sslmode", f"expected one of {', '.join(_SSLMODES)}")

    lease = parse_duration(raw.get("lease"), f"{path}.lease", 15.0)
    if lease < 1.0:
        raise ConfigError(f"{path}.lease", "expected at least 1s (it is renewed every third)")

    def file(key: str) -> Path | None:
        name = str_(raw.get(key), f"{path}.{key}", default="")
        return Path(name) if name else None

    return PostgresSettings(
        dsn_file=file("dsn_file"),
        dsn_env=dsn_env,
        sslmode=sslmode,
        sslrootcert=file("sslrootcert"),
        sslcert=file("sslcert"),
        sslkey=file("sslkey"),
        connect_timeout=parse_duration(raw.get("connect_timeout"), f"{path}.connect_timeout", 5.0),
        lease=lease,
    )


def _parse_owners(
    value: Any,
    path: str,
    base: Path,
    destinations: dict[str, DestinationConfig],
    default_retry: RetryPolicy,
    default_breaker: CircuitBreakerPolicy,
    default_timeout: float,
    default_in_flight: int,
) -> OwnersConfig:
    """Teams from ``owners.teams`` and/or a catalog file (a CMDB export), merged.

    A catalog team may define its own destinations inline; they are registered as
    ``<team>/<name>`` so teams never collide with each other or with the central ones.
    """
    raw = mapping(value, path)
    check_keys(raw, path, ("catalog_file", "teams"))
    sources: list[tuple[str, Any]] = []
    if raw.get("teams") is not None:
        sources.append((f"{path}.teams", raw["teams"]))
    if raw.get("catalog_file") is not None:
        catalog_path = Path(str_(raw["catalog_file"], f"{path}.catalog_file", nonempty=True))
        if not catalog_path.is_absolute():
            catalog_path = base / catalog_path
        try:
            catalog = yaml.safe_load(catalog_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}.catalog_file", f"cannot read: {exc.strerror}") from None
        except yaml.YAMLError:
            raise ConfigError(f"{path}.catalog_file", "invalid YAML or JSON") from None
        catalog_map = mapping(catalog, f"{catalog_path}")
        sources.append((f"{catalog_path}:teams", catalog_map.get("teams")))
    teams: list[Team] = []
    seen: set[str] = set()
    for where, entries in sources:
        if not isinstance(entries, list):
            raise ConfigError(where, "expected a list of teams")
        for i, entry in enumerate(entries):
            tpath = f"{where}[{i}]"
            team_raw = mapping(entry, tpath)
            check_keys(
                team_raw,
                tpath,
                (
                    "name",
                    "namespaces",
                    "clusters",
                    "tenants",
                    "destinations",
                    "contacts",
                    "description",
                ),
            )
            name = str_(team_raw.get("name"), f"{tpath}.name", nonempty=True)
            if name in seen:
                raise ConfigError(f"{tpath}.name", f"duplicate team {name!r}")
            seen.add(name)
            dest_names: list[str] = []
            raw_dests = team_raw.get("destinations")
            if raw_dests is not None and not isinstance(raw_dests, list):
                raise ConfigError(f"{tpath}.destinations", "expected a list")
            for j, dest in enumerate(raw_dests or []):
                dpath = f"{tpath}.destinations[{j}]"
                if isinstance(dest, str):
                    if dest not in destinations:
                        raise ConfigError(dpath, f"unknown destination {dest!r}")
                    dest_names.append(dest)
                    continue
                dest_map = mapping(dest, dpath)
                local = str_(dest_map.get("name"), f"{dpath}.name", nonempty=True)
                full = f"{name}/{local}"
                if full in destinations:
                    raise ConfigError(f"{dpath}.name", f"duplicate destination {full!r}")
                destinations[full] = _parse_destination(
                    full,
                    {k: v for k, v in dest_map.items() if k != "name"},
                    dpath,
                    base,
                    default_retry,
                    default_breaker,
                    default_timeout,
                    default_in_flight,
                )
                dest_names.append(full)
            teams.append(
                Team(
                    name=name,
                    destinations=tuple(dest_names),
                    namespaces=str_list(team_raw.get("namespaces"), f"{tpath}.namespaces"),
                    clusters=str_list(team_raw.get("clusters"), f"{tpath}.clusters"),
                    tenants=str_list(team_raw.get("tenants"), f"{tpath}.tenants"),
                )
            )
    return OwnersConfig(teams=tuple(teams))
