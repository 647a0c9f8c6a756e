"""Typed readers for configuration mappings that know where they are (errors name the key path).

Shared by ``notifiers.config`` and the providers' own option parsers, so every error looks alike
and no secret value ever reaches a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from plumbing.durations import parse_seconds


class ConfigError(ValueError):
    """A configuration problem; the message starts with the key path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.problem = message


# ---- small typed readers that know where they are ----


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"expected a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(path, f"keys must be strings, got {key!r}")
    return value


def check_keys(value: Mapping[str, Any], path: str, allowed: Sequence[str]) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{path}.{unknown[0]}", f"unknown key (expected one of: {', '.join(allowed)})"
        )


def str_(value: Any, path: str, *, default: str | None = None, nonempty: bool = False) -> str:
    if value is None:
        if default is None:
            raise ConfigError(path, "required")
        return default
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a string, got {type(value).__name__}")
    if nonempty and not value:
        raise ConfigError(path, "must not be empty")
    return value


def str_list(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, f"expected a list, got {type(value).__name__}")
    return tuple(str_(v, f"{path}[{i}]", nonempty=True) for i, v in enumerate(value))


def bool_(value: Any, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(path, f"expected true or false, got {value!r}")
    return value


def int_(value: Any, path: str, default: int, *, minimum: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(path, f"must be >= {minimum}")
    return value


def float_(value: Any, path: str, default: float, *, minimum: float = 0.0) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"expected a number, got {value!r}")
    if value < minimum:
        raise ConfigError(path, f"must be >= {minimum}")
    return float(value)


def parse_duration(value: Any, path: str, default: float) -> float:
    """Seconds from ``30s``, ``5m``, ``1h``, ``7d``, ``250ms``, ``1h30m`` or a plain number."""
    if value is None:
        return default
    try:
        return parse_seconds(value)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None


def read_secret(
    mapping: Mapping[str, Any], path: str, base: str, *, required: bool, base_dir: Path
) -> str | None:
    """A secret from ``<base>_file`` or ``<base>_env``; never from the YAML itself."""
    if base in mapping:
        raise ConfigError(
            f"{path}.{base}", f"secrets are not read from the file; use {base}_file or {base}_env"
        )
    file_key, env_key = f"{base}_file", f"{base}_env"
    if mapping.get(file_key) is not None and mapping.get(env_key) is not None:
        raise ConfigError(path, f"set only one of {file_key} and {env_key}")
    if mapping.get(file_key) is not None:
        file_path = Path(str_(mapping[file_key], f"{path}.{file_key}", nonempty=True))
        if not file_path.is_absolute():
            file_path = base_dir / file_path
        try:
            text = file_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{path}.{file_key}", f"cannot read: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"{path}.{file_key}", "the file is empty")
        return text
    if mapping.get(env_key) is not None:
        name = str_(mapping[env_key], f"{path}.{env_key}", nonempty=True)
        text = os.environ.get(name, "").strip()
        if not text:
            raise ConfigError(f"{path}.{env_key}", f"environment variable {name} is unset or empty")
        return text
    if required:
        raise ConfigError(path, f"{file_key} or {env_key} is required")
    return None
