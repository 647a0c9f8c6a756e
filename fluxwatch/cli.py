"""The ``fluxwatch`` command: parses arguments and hands them to one subcommand module.

The mistakes a user makes every day (a bad configuration file, a port already in use, a state
directory that cannot be written, a cluster source that does not exist) end as one line on
stderr naming the problem and exit status 2, with everything that had started stopped again.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence

from exporter.kube.clusters import ClusterSourceError
from exporter.settings import SettingsError
from fluxwatch import __version__, logs
from fluxwatch.commands import (
    alerts,
    bridge,
    config,
    dashboards,
    demo,
    exporter,
    outbox,
    rollouts,
    run,
    simulate,
)
from fluxwatch.config import ConfigFileError
from notifiers.app import StateDirError
from plumbing.http_server import ListenError

COMMANDS = (simulate, exporter, bridge, outbox, rollouts, run, demo, dashboards, alerts, config)

# Errors that are the user's to fix, never a bug of ours: printed as one line, exit status 2.
USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigFileError,
    SettingsError,
    ListenError,
    StateDirError,
    ClusterSourceError,
)


def _add_logging_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Below the top level the default is SUPPRESS, so `fluxwatch --log-level debug bridge` is
    # not overwritten by the subcommand's default: the flags work before or after it.
    parser.add_argument(
        "--log-level",
        default="info" if top else argparse.SUPPRESS,
        choices=logs.LEVELS,
        help="least severe log level to print (default: info)",
    )
    parser.add_argument(
        "--log-format",
        default="text" if top else argparse.SUPPRESS,
        choices=logs.FORMATS,
        help="text for people, json for log pipelines: one JSON object per line with time, "
        "level, logger and message (default: text)",
    )


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxwatch",
        description=(
            "Fleet-wide Flux CD observability: status metrics for every Flux object in one or "
            "hundreds of clusters, and a durable bridge that tells the owning team when a "
            "reconciliation fails or a commit has rolled out. New here? `fluxwatch config "
            "example > fluxwatch.yaml`, then `fluxwatch run --config fluxwatch.yaml`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fluxwatch {__version__}")
    _add_logging_flags(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    for sub in _subparsers(parser):
        _add_logging_flags(sub, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except USER_ERRORS as exc:
        print(f"fluxwatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before a command's own handler was in place
        return 130
