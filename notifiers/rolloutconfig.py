"""The ``bridge.exporters`` and ``bridge.rollouts`` keys of ``fluxwatch.yaml``.

``exporters`` holds the bearer token(s) remote exporters present when they POST transitions and
rollout reports (``fluxwatch exporter --bridge-url``); ``rollouts`` tunes the fleet rollout
state: when its status turns to failure and how long finished rollouts are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notifiers.configkit import (
    ConfigError,
    check_keys,
    float_,
    int_,
    mapping,
    parse_duration,
    read_secret,
)
from notifiers.rollouts import FailPolicy


@dataclass(frozen=True, slots=True)
class ExportersConfig:
    tokens: tuple[str, ...] = field(default=(), repr=False)  # secrets: never printed


@dataclass(frozen=True, slots=True)
class RolloutsConfig:
    fail: FailPolicy = field(default_factory=FailPolicy)
    retention: float = 7 * 86400.0
    prune_interval: float = 60.0
    status_interval: float = 10.0  # between progress posts of one commit status context


def parse_exporters(value: Any, path: str, base: Path) -> ExportersConfig:
    raw = mapping(value, path)
    check_keys(raw, path, ("token_file", "token_env"))
    token = read_secret(raw, path, "token", required=False, base_dir=base)
    if token is None:
        return ExportersConfig()
    # One token per line: rotation is add the new line, roll the exporters, drop the old line.
    tokens = tuple(line.strip() for line in token.splitlines() if line.strip())
    return ExportersConfig(tokens=tokens)


def parse_rollouts(value: Any, path: str) -> RolloutsConfig:
    raw: Mapping[str, Any] = mapping(value, path)
    check_keys(
        raw, path, ("fail_count", "fail_share", "retention", "prune_interval", "status_interval")
    )
    share = float_(raw.get("fail_share"), f"{path}.fail_share", 0.0)
    if share > 1:
        raise ConfigError(f"{path}.fail_share", "a share between 0 and 1, e.g. 0.05 for 5%")
    return RolloutsConfig(
        fail=FailPolicy(
            count=int_(raw.get("fail_count"), f"{path}.fail_count", 1, minimum=1), share=share
        ),
        retention=parse_duration(raw.get("retention"), f"{path}.retention", 7 * 86400.0),
        prune_interval=parse_duration(raw.get("prune_interval"), f"{path}.prune_interval", 60.0),
        status_interval=parse_duration(raw.get("status_interval"), f"{path}.status_interval", 10.0),
    )
