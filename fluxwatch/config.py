"""``fluxwatch.yaml``: the one loader every command uses, one section per part.

The file is read and parsed once, its top-level keys are checked (a misspelled ``brige:`` is an
error, never a bridge silently running without destinations), and each section is handed to its
own package's parser. Every error reads the same whichever command loaded the file::

    fluxwatch.yaml:12:5: bridge.destinations.ci.url: required

file, line and column of the offending key (or of the nearest enclosing one), the key path, and
the problem. Secrets are never in this file itself: the bridge's keys name environment variables
or files, which is why a command that does not run the bridge does not parse its section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.settings import ExporterSettings, SettingsError, settings_from_mapping
from notifiers.config import BridgeConfig, config_from_mapping
from notifiers.configkit import ConfigError as BridgeConfigError

# Every section a fluxwatch.yaml may have, in the order the docs present them.
TOP_LEVEL_KEYS = ("exporter", "bridge")

_LAST_SEGMENT = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")


class ConfigFileError(ValueError):
    """A problem with the configuration file; the message names file, line, column and key."""


@dataclass(frozen=True, slots=True)
class FluxwatchConfig:
    path: Path
    exporter: ExporterSettings
    bridge: BridgeConfig | None  # None when the file has no bridge: section or it was not asked for


@dataclass(frozen=True, slots=True)
class ConfigDocument:
    """The parsed file and where each key path sits in it (1-based line and column)."""

    path: Path
    data: Mapping[str, Any]
    positions: Mapping[str, tuple[int, int]]

    def error(self, key_path: str, problem: str) -> ConfigFileError:
        """The error for ``key_path``, placed at that key or the nearest enclosing one."""
        where = key_path
        while where and where not in self.positions:
            shorter = _LAST_SEGMENT.sub("", where)
            where = "" if shorter == where else shorter
        if where not in self.positions:  # e.g. a key the file lacks, or another file's key
            return ConfigFileError(f"{self.path}: {key_path}: {problem}")
        line, column = self.positions[where]
        return ConfigFileError(f"{self.path}:{line}:{column}: {key_path}: {problem}")


def _index(node: yaml.Node, path: str, out: dict[str, tuple[int, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = f"{path}.{key_node.value}" if path else str(key_node.value)
            out.setdefault(child, (key_node.start_mark.line + 1, key_node.start_mark.column + 1))
            _index(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            out.setdefault(child, (item.start_mark.line + 1, item.start_mark.column + 1))
            _index(item, child, out)


def read_document(path: Path) -> ConfigDocument:
    """Reads and parses the file and checks its top-level keys; raises ``ConfigFileError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(
            f"{path}: cannot read: {(exc.strerror or str(exc)).lower()}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigFileError(f"{path}: not UTF-8 text") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if mark is None:
            raise ConfigFileError(f"{path}: invalid YAML: {problem}") from None
        raise ConfigFileError(
            f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}"
        ) from None
    finally:
        loader.dispose()
    positions: dict[str, tuple[int, int]] = {}
    if node is not None:
        _index(node, "", positions)
    if document is None:
        document = {}
    doc = ConfigDocument(path=path, data={}, positions=positions)
    if not isinstance(document, Mapping):
        raise ConfigFileError(
            f"{path}:1:1: (top level): expected a mapping of sections (exporter:, bridge:)"
        )
    for key in sorted(document, key=str):
        if key not in TOP_LEVEL_KEYS:
            raise doc.error(str(key), f"unknown key (expected one of: {', '.join(TOP_LEVEL_KEYS)})")
    return ConfigDocument(path=path, data=document, positions=positions)


def load_config(path: Path, *, bridge: bool = True) -> FluxwatchConfig:
    """Reads and validates the file; raises ``ConfigFileError`` naming file, line and key.

    The top level and the ``exporter:`` section are always checked. The ``bridge:`` section is
    parsed (reading the secrets it names) unless ``bridge`` is false, for commands that do not
    run the bridge and may not have its secrets at hand.
    """
    document = read_document(path)
    data = document.data
    try:
        exporter = settings_from_mapping(data.get("exporter"), "exporter")
        bridge_config = (
            config_from_mapping(data, base_dir=path.parent)
            if bridge and data.get("bridge") is not None
            else None
        )
    except SettingsError as exc:
        raise document.error(exc.key_path, exc.problem) from None
    except BridgeConfigError as exc:
        raise document.error(exc.path, exc.problem) from None
    return FluxwatchConfig(path=path, exporter=exporter, bridge=bridge_config)


def require_bridge(config: FluxwatchConfig) -> BridgeConfig:
    """The bridge: section, or an error saying the file has none."""
    if config.bridge is None:
        raise ConfigFileError(
            f"{config.path}: bridge: section missing (`fluxwatch config example` prints a "
            "starter file)"
        )
    return config.bridge
