"""Every subcommand answers --help and documents its flags."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

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


def _commands(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub
                yield from _commands(sub, f"{path} {name}")


def test_every_subcommand_has_a_description() -> None:
    """`fluxwatch X --help` says what X does, at every depth (`bridge routes test` too)."""
    commands = dict(_commands(build_parser(), "fluxwatch"))
    assert "fluxwatch bridge routes test" in commands
    assert [path for path, parser in commands.items() if not parser.description] == []


USAGE = [
    (["run"], "--config FILE"),
    (["bridge"], "bridge --config FILE"),
    (["bridge", "routes", "test"], "--config FILE --event FILE"),
    (["outbox", "list"], "(--config FILE | --state-dir DIR)"),
    (["outbox", "purge"], "(--config FILE | --state-dir DIR)"),
    (["config", "check"], "] FILE"),
]


@pytest.mark.parametrize(("words", "required"), USAGE, ids=[" ".join(u[0]) for u in USAGE])
def test_usage_line_shows_what_is_required(
    words: list[str], required: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*words, "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert required in " ".join(usage.split())


def test_outbox_without_a_state_source_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["outbox", "list"])
    assert exit_info.value.code == 2
    assert "one of the arguments --config --state-dir is required" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_flags_are_accepted_before_or_after_the_subcommand(where: str) -> None:
    flags = ["--log-level", "warning", "--log-format", "json"]
    command = ["bridge", "routes", "test", "--config", "f", "--event", "e"]
    argv = [*flags, *command] if where == "before" else [*command, *flags]
    args = build_parser().parse_args(argv)
    assert (args.log_level, args.log_format) == ("warning", "json")


def test_log_flags_default_when_absent() -> None:
    args = build_parser().parse_args(["outbox", "list", "--state-dir", "s"])
    assert (args.log_level, args.log_format) == ("info", "text")


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_flag_of_every_command_is_in_the_docs() -> None:
    """Each flag appears in docs/configuration.md or in its command's own page under docs/."""
    reference = (DOCS / "configuration.md").read_text()
    pages = reference + "".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    assert "## Commands and flags" in reference
    missing = []
    for path, parser in _commands(build_parser(), "fluxwatch"):
        assert f"`{path}" in reference or path.count(" ") > 1, f"{path} not in the commands table"
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and not re.search(re.escape(flag) + r"\b", pages):
                    missing.append(f"{path} {flag}")
    assert missing == []
