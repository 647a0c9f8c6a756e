"""docs/exporter.md documents every key of the exporter: section and every command flag."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from exporter.settings import ExporterSettings
from fluxwatch.cli import build_parser

DOC = Path(__file__).resolve().parents[3] / "docs" / "exporter.md"


def _keys(cls: type, prefix: str = "") -> list[str]:
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            keys.extend(_keys(hint, f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys


def test_every_config_key_is_in_the_table() -> None:
    text = DOC.read_text()
    missing = [k for k in _keys(ExporterSettings) if f"| `{k}` |" not in text]
    assert not missing


def test_every_flag_is_documented() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    exporter = subparsers.choices["exporter"]  # type: ignore[attr-defined]
    text = DOC.read_text()
    flags = [
        option
        for action in exporter._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    assert flags
    missing = [f for f in flags if not re.search(re.escape(f) + r"\b", text)]
    assert not missing
