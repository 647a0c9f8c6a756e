"""The exporter's settings: frozen dataclasses, one docstring per field, and the config parser.

Every field of these dataclasses is also a key of the ``exporter:`` section of ``fluxwatch.yaml``
(same name, same nesting), so the documentation, the parser and the code cannot drift apart:
``settings_from_mapping`` walks the dataclass fields and their type hints instead of a hand-kept
key list. Durations (``*_seconds`` keys) take a number of seconds or the syntax every duration of
the file takes (``90s``, ``5m``, ``1h30m``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from plumbing.durations import parse_seconds
from plumbing.http_server import parse_address

PerObjectMode = Literal["all", "not-ready", "none"]
ShardBy = Literal["auto", "cluster", "object"]


class SettingsError(ValueError):
    """A configuration value is wrong; the message starts with its key path."""

    def __init__(self, key_path: str, problem: str) -> None:
        super().__init__(f"{key_path}: {problem}")
        self.key_path = key_path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class BackoffSettings:
    """Reconnect delays: exponential with jitter, so 500 clusters do not retry in lockstep."""

    initial_seconds: float = 1.0
    """Delay before the first retry; short, because most drops are a load balancer recycling."""
    multiplier: float = 2.0
    """Each further failure multiplies the delay by this."""
    maximum_seconds: float = 60.0
    """Ceiling of the computed delay: an outage is noticed again within a minute of ending."""
    jitter: float = 0.2
    """Fraction of the delay spread at random either way (0.2 gives 0.8x to 1.2x)."""
    retry_after_cap_seconds: float = 300.0
    """A server's ``Retry-After`` is honoured up to this: a bad header cannot stall us a day."""


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How each kind is listed and watched."""

    page_size: int = 500
    """``limit`` of each list page; the API server answers large lists in pages of this size."""
    server_timeout_seconds: float = 300.0
    """``timeoutSeconds`` asked of the server; it ends the stream cleanly and we resume from the
    last resourceVersion, which keeps load balancers from cutting idle streams at random."""
    inactivity_timeout_seconds: float = 90.0
    """A stream silent for this long is treated as dead and reopened from the last version.
    The API server sends a BOOKMARK about once a minute, so a live stream is never this quiet;
    a half-open TCP connection (a node or proxy gone without a FIN) is."""
    request_timeout_seconds: float = 30.0
    """Total time allowed for a discovery request or one list page."""
    rediscovery_interval_seconds: float = 300.0
    """How often each cluster's served Flux groups/versions are checked again, so a CRD
    installed (or upgraded to a newer version) after start is picked up without a restart."""
    max_concurrent_lists: int = 64
    """Lists in flight at once across all clusters: the initial sync of a large fleet is paced
    instead of opening thousands of requests at the same instant."""
    backoff: BackoffSettings = field(default_factory=BackoffSettings)
    """Reconnect delays after errors."""


@dataclass(frozen=True, slots=True)
class ClusterEntry:
    """One chosen context of a kubeconfig, optionally renamed."""

    context: str
    """The kubeconfig context to use."""
    name: str = ""
    """The ``cluster`` label value; the context name when empty."""
    kubeconfig: str = ""
    """The kubeconfig file holding the context; the section's ``kubeconfig`` when empty."""


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    """The whole ``exporter:`` section of ``fluxwatch.yaml``.

    Cluster sources (``in_cluster``, ``kubeconfig`` with ``contexts``/``context_regex``,
    ``clusters``, ``kubeconfig_dir``) may be combined; cluster names must be unique.
    """

    listen: str = "0.0.0.0:9797"
    """``HOST:PORT`` of the HTTP server (``/metrics``, ``/healthz``, ``/readyz``, ``/``);
    port 0 picks a free one."""
    per_object: PerObjectMode = "all"
    """``all``: per-object series for every object; ``not-ready``: only for objects that are
    not ready, so cardinality follows failures; ``none``: aggregates only."""
    gotk_resource_info: bool = False
    """Also serve ``gotk_resource_info`` exactly as the flux2-monitoring-example
    kube-state-metrics config does, for existing community dashboards."""
    in_cluster: bool = False
    """Watch the cluster the exporter runs in, with its service account."""
    in_cluster_name: str = "in-cluster"
    """The ``cluster`` label of the in-cluster source."""
    kubeconfig: str = ""
    """A kubeconfig file. With no source chosen at all, ``$KUBECONFIG`` or ``~/.kube/config``."""
    contexts: tuple[str, ...] = ()
    """Contexts of ``kubeconfig`` to watch, by name. Empty (and no regex): every context."""
    context_regex: str = ""
    """Contexts of ``kubeconfig`` whose name matches this regular expression (full match)."""
    clusters: tuple[ClusterEntry, ...] = ()
    """Contexts listed one by one, to rename them or take them from other kubeconfig files."""
    kubeconfig_dir: str = ""
    """A directory of kubeconfig files, one cluster each (its current context); files added,
    changed or removed are picked up without a restart. Hidden files are ignored."""
    dir_scan_interval_seconds: float = 10.0
    """How often ``kubeconfig_dir`` is scanned for added, changed or removed files."""
    namespace: str = ""
    """Watch only this namespace; every namespace when empty."""
    label_selector: str = ""
    """A Kubernetes label selector, e.g. ``sharding.fluxcd.io/key=shard1`` to follow one Flux
    controller shard, or ``!sharding.fluxcd.io/key`` for the unsharded objects."""
    shard: int | None = None
    """This replica's shard, 0-based. Unset with ``total_shards`` > 1: the StatefulSet ordinal
    taken from the host name (``fluxwatch-exporter-2`` is shard 2)."""
    total_shards: int = 1
    """How many replicas share the fleet."""
    shard_by: ShardBy = "auto"
    """``cluster`` splits clusters by a stable hash of their name; ``object`` splits the objects
    of every cluster by a hash of their uid; ``auto`` is ``object`` when exactly one cluster is
    configured statically (in-cluster or one context) and ``cluster`` otherwise."""
    progress_log_interval_seconds: float = 10.0
    """While the initial sync runs, a progress line (clusters synced / total, objects so far) is
    logged this often."""
    watch: WatchSettings = field(default_factory=WatchSettings)
    """List/watch tuning."""
    bridge_url: str = ""
    """Base URL of a notification bridge in another process or pod (``fluxwatch bridge``):
    transitions and rollout reports are POSTed there. Empty: no remote bridge (``fluxwatch
    run`` hands them over in-process instead)."""
    bridge_token_file: str = ""
    """File holding the bearer token the bridge expects (``bridge.exporters.token_file``)."""
    bridge_token_env: str = ""
    """Environment variable holding that token, when no file is given."""
    bridge_buffer_size: int = 50_000
    """Transitions held for the bridge while it is away; beyond this the oldest are dropped
    and counted in ``fluxwatch_exporter_bridge_dropped_total``."""


def settings_from_mapping(data: Any, key_path: str = "exporter") -> ExporterSettings:
    """Parses the ``exporter:`` section; every error names the key path of the bad value."""
    settings: ExporterSettings = _parse_dataclass(
        ExporterSettings, {} if data is None else data, key_path
    )
    validate(settings, key_path)
    return settings


def validate(settings: ExporterSettings, key_path: str = "exporter") -> None:
    """Checks relations between fields (also used after command-line overrides)."""
    _check_listen(settings.listen, f"{key_path}.listen")
    if settings.total_shards < 1:
        raise SettingsError(f"{key_path}.total_shards", "must be at least 1")
    if settings.shard is not None and not 0 <= settings.shard < settings.total_shards:
        raise SettingsError(
            f"{key_path}.shard",
            f"must be between 0 and total_shards - 1 ({settings.total_shards - 1})",
        )
    if settings.context_regex:
        try:
            re.compile(settings.context_regex)
        except re.error as exc:
            raise SettingsError(
                f"{key_path}.context_regex", f"not a regular expression: {exc}"
            ) from None
    for index, entry in enumerate(settings.clusters):
        if not entry.context:
            raise SettingsError(f"{key_path}.clusters[{index}].context", "must not be empty")
    watch = settings.watch
    for name in (
        "server_timeout_seconds",
        "inactivity_timeout_seconds",
        "request_timeout_seconds",
        "rediscovery_interval_seconds",
    ):
        if getattr(watch, name) <= 0:
            raise SettingsError(f"{key_path}.watch.{name}", "must be positive")
    for name in ("page_size", "max_concurrent_lists"):
        if getattr(watch, name) < 1:
            raise SettingsError(f"{key_path}.watch.{name}", "must be at least 1")
    backoff = watch.backoff
    if backoff.initial_seconds <= 0 or backoff.maximum_seconds < backoff.initial_seconds:
        raise SettingsError(
            f"{key_path}.watch.backoff", "needs 0 < initial_seconds <= maximum_seconds"
        )
    if backoff.multiplier < 1:
        raise SettingsError(f"{key_path}.watch.backoff.multiplier", "must be at least 1")
    if not 0 <= backoff.jitter < 1:
        raise SettingsError(f"{key_path}.watch.backoff.jitter", "must be in [0, 1)")
    if settings.bridge_url and not settings.bridge_url.startswith(("http://", "https://")):
        raise SettingsError(f"{key_path}.bridge_url", "expected an http:// or https:// URL")
    if settings.bridge_url and not (settings.bridge_token_file or settings.bridge_token_env):
        raise SettingsError(
            f"{key_path}.bridge_token_file", "required with bridge_url (or bridge_token_env)"
        )
    if settings.bridge_buffer_size < 1:
        raise SettingsError(f"{key_path}.bridge_buffer_size", "must be at least 1")
    for name in ("dir_scan_interval_seconds", "progress_log_interval_seconds"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{key_path}.{name}", "must be positive")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9797`` for IPv6) to a host and port; ``ValueError`` if not."""
    return parse_address(value)


def _check_listen(value: str, key_path: str) -> None:
    try:
        parse_listen(value)
    except ValueError as exc:
        raise SettingsError(key_path, str(exc)) from None


# ---- a small typed parser driven by the dataclass fields --------------------------------------


def _parse_dataclass(cls: type[Any], data: Any, key_path: str) -> Any:
    if not isinstance(data, Mapping):
        raise SettingsError(key_path, f"expected a mapping, got {yaml_type_name(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        raise SettingsError(
            f"{key_path}.{unknown[0]}",
            f"unknown key (expected one of: {', '.join(sorted(fields))})",
        )
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _parse_value(hints[name], data[name], f"{key_path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SettingsError(f"{key_path}.{name}", "is required")
    return cls(**values)


def _parse_value(hint: Any, value: Any, key_path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse_value(inner, value, key_path)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(str(a) for a in args)
            raise SettingsError(key_path, f"expected one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise SettingsError(key_path, f"expected a list, got {yaml_type_name(value)}")
        return tuple(
            _parse_value(args[0], item, f"{key_path}[{i}]") for i, item in enumerate(value)
        )
    if dataclasses.is_dataclass(hint):
        return _parse_dataclass(hint, value, key_path)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(key_path, f"expected true or false, got {yaml_type_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(key_path, f"expected an integer, got {yaml_type_name(value)}")
        return value
    if hint is float and key_path.endswith("_seconds") and isinstance(value, str):
        try:
            return parse_seconds(value)  # the same syntax as the bridge's durations: 90s, 5m
        except ValueError as exc:
            raise SettingsError(key_path, str(exc)) from None
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(key_path, f"expected a number, got {yaml_type_name(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(key_path, f"expected a string, got {yaml_type_name(value)}")
        return value
    raise TypeError(f"{key_path}: unsupported settings type {hint!r}")  # a bug in this module


def yaml_type_name(value: Any) -> str:
    """How a config value reads in an error message: "a string", "a list", "nothing"."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
