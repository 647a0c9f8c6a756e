"""``fluxwatch.yaml``: one file, one section per part (``exporter:``, ``bridge:``).

The file is read and parsed once; each section is handed to its own package's parser, which
validates it and raises an error whose message starts with the key path of the bad value. Secrets
are never in this file itself: the bridge's keys name environment variables or files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.settings import ExporterSettings, SettingsError, settings_from_mapping
from notifiers.config import BridgeConfig, config_from_mapping
from notifiers.configkit import ConfigError as BridgeConfigError

TOP_LEVEL_KEYS = ("exporter", "bridge")


class ConfigFileError(ValueError):
    """A problem with the configuration file; the message names the file and the key path."""


@dataclass(frozen=True, slots=True)
class FluxwatchConfig:
    exporter: ExporterSettings
    bridge: BridgeConfig | None  # None when the file has no bridge: section


def read_document(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigFileError(f"{path}: invalid YAML{where}") from None
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigFileError(f"{path}: (top level): expected a mapping")
    unknown = sorted(str(key) for key in document if key not in TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigFileError(
            f"{path}: {unknown[0]}: unknown key (expected one of: {', '.join(TOP_LEVEL_KEYS)})"
        )
    return document


def load_config(path: Path) -> FluxwatchConfig:
    """Reads and validates the whole file; raises ``ConfigFileError`` naming file and key."""
    document = read_document(path)
    try:
        exporter = settings_from_mapping(document.get("exporter"), "exporter")
        bridge = (
            config_from_mapping(document, base_dir=path.parent)
            if document.get("bridge") is not None
            else None
        )
    except (SettingsError, BridgeConfigError) as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    return FluxwatchConfig(exporter=exporter, bridge=bridge)
