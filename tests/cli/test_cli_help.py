"""Every subcommand answers --help and documents its flags."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from fluxwatch.cli import COMMANDS, build_parser


@pytest.mark.parametrize("command", [c.__name__.rsplit(".", 1)[1] for c in COMMANDS])
def test_subcommand_help_exits_zero(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.__name__.rsplit(".", 1)[1] in out


def _undocumented(parser: argparse.ArgumentParser, path: str) -> Iterator[str]:
    """Every argument, at any depth of subcommands, that --help would print without a text."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if not choice.help:
                    yield f"{path} {choice.dest}"
            for name, sub in action.choices.items():
                yield from _undocumented(sub, f"{path} {name}")
        elif not action.help:
            yield f"{path} {'/'.join(action.option_strings) or action.dest}"


def test_every_flag_and_argument_has_help() -> None:
    assert list(_undocumented(build_parser(), "fluxwatch")) == []
