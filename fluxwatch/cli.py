"""The ``fluxwatch`` command: parses arguments and hands them to one subcommand module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from fluxwatch import __version__
from fluxwatch.commands import alerts, bridge, dashboards, demo, exporter, outbox, run, simulate

COMMANDS = (simulate, exporter, bridge, outbox, run, demo, dashboards, alerts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxwatch",
        description=(
            "Fleet-wide Flux CD observability: status metrics for every Flux object in one or "
            "hundreds of clusters, and a durable bridge that tells the owning team when a "
            "reconciliation fails or a commit has rolled out."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fluxwatch {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="least severe log level to print (default: info)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)
