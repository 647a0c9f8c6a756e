"""`fluxwatch rollouts`: the fleet rollouts a release manager keeps open during a rollout.

Reads a running bridge (``--bridge-url``, its ``GET /rollouts``), the bridge's state directory
(``--state-dir``/``--config``), or with ``--config`` setting ``bridge.outbox.postgres`` the
PostgreSQL database its replicas share; safe while bridges run. ``--watch`` redraws until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fluxwatch.config import ConfigFileError, load_config, require_bridge
from notifiers.pgstore import PostgresError, PostgresSettings
from notifiers.rolloutpg import RolloutConnection, open_connection
from notifiers.rollouts import FailPolicy
from notifiers.rolloutstore import open_readonly
from notifiers.rolloutview import load_view, render_text
from notifiers.statuspublisher import dead_statuses


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollouts",
        help="show current and recent fleet rollouts (applied/total, failing, slowest clusters)",
        description=(
            "One row per rollout (a revision of one Kustomization or HelmRelease across every "
            "cluster running it), newest first: applied/total, failing clusters, age and the "
            "slowest clusters. Reads a running bridge or its state directory."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--bridge-url", metavar="URL", help="a running bridge, e.g. http://bridge:9095"
    )
    source.add_argument(
        "--state-dir", type=Path, metavar="DIR", help="the bridge's state directory"
    )
    source.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="fluxwatch.yaml (bridge.state_dir, or bridge.outbox.postgres)",
    )
    parser.add_argument("--watch", action="store_true", help="redraw every --interval seconds")
    parser.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="with --watch (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


View = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # rollouts, dead commit statuses


def _fetch(url: str) -> View:
    with urllib.request.urlopen(url.rstrip("/") + "/rollouts", timeout=10) as resp:
        doc = json.loads(resp.read())
    rows = doc.get("rollouts") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError("unexpected answer from the bridge")
    dead = doc.get("dead_statuses")
    return rows, dead if isinstance(dead, list) else []


def _read(where: Path | PostgresSettings, policy: FailPolicy) -> View:
    conn: RolloutConnection | sqlite3.Connection = (
        open_connection(where, create=False)
        if isinstance(where, PostgresSettings)
        else open_readonly(where)
    )
    try:
        return load_view(conn, policy, time.time()), dead_statuses(conn)
    finally:
        conn.close()


def handle(args: argparse.Namespace) -> int:
    policy = FailPolicy()
    where: Path | PostgresSettings | None = args.state_dir
    if args.config is not None:
        try:
            config = require_bridge(load_config(args.config))
        except ConfigFileError as exc:
            print(f"fluxwatch rollouts: {exc}", file=sys.stderr)
            return 2
        postgres = config.outbox.postgres
        where = config.state_dir if postgres is None else postgres
        policy = config.rollouts.fail
    if args.bridge_url is None and where is None:
        print(
            "fluxwatch rollouts: --bridge-url, --state-dir or --config is required", file=sys.stderr
        )
        return 2
    while True:
        try:
            if args.bridge_url is not None:
                rows, dead = _fetch(args.bridge_url)
            else:
                assert where is not None
                rows, dead = _read(where, policy)
        except (OSError, ValueError, sqlite3.Error, PostgresError, urllib.error.URLError) as exc:
            print(f"fluxwatch rollouts: {exc}", file=sys.stderr)
            return 2
        text = (
            json.dumps(rows, sort_keys=True, indent=2) + "\n"
            if args.json
            else render_text(rows, dead)
        )
        if args.watch:
            sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S  ") + "\n" + text)
        else:
            sys.stdout.write(text)
        sys.stdout.flush()
        if not args.watch:
            return 0
        try:
            time.sleep(args.interval)  # the terminal refresh cadence, not a test wait
        except KeyboardInterrupt:
            return 0
