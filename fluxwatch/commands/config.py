"""`fluxwatch config`: print a starter configuration, or check a file the way every command does."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

from fluxwatch.config import load_config


def starter_text() -> str:
    """The starter ``fluxwatch.yaml`` (also checked in as ``examples/fluxwatch.yaml``)."""
    return resources.files("fluxwatch").joinpath("starter.yaml").read_text(encoding="utf-8")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print a starter fluxwatch.yaml, or check one",
        description=(
            "`fluxwatch config example` prints a configuration that works as is (loopback "
            "addresses, a local state directory, every notification printed on the terminal); "
            "`fluxwatch config check FILE` loads a file exactly as `run` and `bridge` do and "
            "reports the first problem with its file, line, column and key path."
        ),
    )
    sub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    example = sub.add_parser(
        "example",
        help="print a starter fluxwatch.yaml that works as is",
        description="Print a starter fluxwatch.yaml: fluxwatch config example > fluxwatch.yaml",
    )
    example.set_defaults(handler=_example)
    check = sub.add_parser(
        "check",
        help="load a fluxwatch.yaml as `run` does and report its first problem",
        description=(
            "Load FILE as `fluxwatch run` does (both sections, secrets read from their files "
            "and environment variables) and print a summary; exit status 2 with one line "
            "naming file, line, column and key path on the first problem."
        ),
    )
    check.add_argument("file", type=Path, metavar="FILE", help="the fluxwatch.yaml to check")
    check.set_defaults(handler=_check)


def _example(args: argparse.Namespace) -> int:
    print(starter_text(), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)  # a ConfigFileError is printed by the CLI, exit status 2
    print(f"{args.file}: ok")
    print(f"  exporter: listens on {config.exporter.listen}")
    if config.bridge is None:
        print("  bridge: no bridge: section")
    else:
        b = config.bridge
        print(
            f"  bridge: listens on {b.listen_host}:{b.listen_port}, state in {b.state_dir}, "
            f"{len(b.destinations)} destination(s): {', '.join(sorted(b.destinations)) or '-'}"
        )
    return 0
