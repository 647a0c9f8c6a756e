"""`fluxwatch outbox`: inspect, replay and purge the bridge's durable outbox."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluxwatch.config import ConfigFileError, load_config, require_bridge
from notifiers.admin import (
    counts,
    list_notifications,
    open_outbox,
    purge_notifications,
    replay_notifications,
    show_notification,
    with_readable_times,
)
from notifiers.configkit import ConfigError, parse_duration
from notifiers.pgschema import PostgresError
from notifiers.pgstore import PostgresSettings, copy_from_sqlite, open_admin
from notifiers.rolloutpg import copy_from_sqlite as copy_rollouts_from_sqlite


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "outbox",
        help="inspect, replay and purge the bridge's outbox (dead letters)",
        description="Operate on the bridge's outbox (SQLite in the state directory, or "
        "PostgreSQL when the config sets bridge.outbox.postgres); safe while the bridge runs.",
    )
    sub = parser.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            help="fluxwatch.yaml (bridge.state_dir, or bridge.outbox.postgres)",
        )
        where.add_argument(
            "--state-dir", type=Path, metavar="DIR", help="the bridge's state directory"
        )

    p = sub.add_parser(
        "list",
        help="list notifications, newest first, with per-destination counts",
        description="List notifications, newest first, after the counts per destination and "
        "status.",
    )
    common(p)
    p.add_argument("--status", choices=["pending", "delivered", "dead"], help="only this status")
    p.add_argument("--destination", metavar="NAME", help="only this destination")
    p.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most this many rows (default 50)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_list)

    p = sub.add_parser(
        "show",
        help="one notification with its events, attempts and last error",
        description="Print one notification as JSON: its events, attempts and last error; "
        "times are ISO 8601 UTC.",
    )
    common(p)
    p.add_argument("id", type=int, help="notification id, as `outbox list` prints it")
    p.set_defaults(handler=_show)

    p = sub.add_parser(
        "replay",
        help="send dead notifications again (same idempotency key)",
        description="Requeue dead notifications; a running bridge sends them again within a "
        "second, with the same idempotency key.",
    )
    common(p)
    p.add_argument("ids", type=int, nargs="*", metavar="ID", help="notification ids to replay")
    p.add_argument("--all-dead", action="store_true", help="every dead notification")
    p.add_argument("--destination", metavar="NAME", help="with --all-dead: only this destination")
    p.set_defaults(handler=_replay)

    p = sub.add_parser(
        "purge",
        help="delete dead and/or delivered notifications",
        description="Delete notifications by id, or every dead and/or delivered one (optionally "
        "only those older than a duration, or of one destination).",
    )
    common(p)
    p.add_argument("ids", type=int, nargs="*", metavar="ID", help="notification ids to purge")
    p.add_argument("--dead", action="store_true", help="purge dead notifications")
    p.add_argument("--delivered", action="store_true", help="purge delivered notifications")
    p.add_argument("--older-than", metavar="DURATION", help="only those created before, e.g. 7d")
    p.add_argument("--destination", metavar="NAME", help="only this destination")
    p.set_defaults(handler=_purge)

    p = sub.add_parser(
        "migrate",
        help="move a single-node bridge's SQLite outbox into PostgreSQL",
        description="Copy every row of a stopped bridge's SQLite outbox (pending, delivered and "
        "dead notifications, events, de-duplication state, groups, thread anchors) into the "
        "empty PostgreSQL outbox that --config names, in one transaction, then the fleet "
        "rollout state (rollouts.sqlite3) when there is one. Refused while a bridge writes to "
        "that database.",
    )
    p.add_argument("--config", type=Path, metavar="FILE", required=True, help="fluxwatch.yaml")
    p.add_argument(
        "--from-sqlite", type=Path, metavar="DIR", required=True, help="the old state directory"
    )
    p.set_defaults(handler=_migrate)


def _where(args: argparse.Namespace) -> Path | PostgresSettings | None:
    """The state directory of a SQLite outbox, or the PostgreSQL outbox's settings."""
    if getattr(args, "state_dir", None) is not None:
        return Path(args.state_dir)
    if args.config is not None:
        try:
            bridge = require_bridge(load_config(args.config))
        except ConfigFileError as exc:
            print(f"fluxwatch outbox: {exc}", file=sys.stderr)
            return None
        return bridge.outbox.postgres if bridge.outbox.postgres is not None else bridge.state_dir
    print("fluxwatch outbox: --state-dir DIR or --config FILE is required", file=sys.stderr)
    return None


def _open(args: argparse.Namespace) -> Any:
    where = _where(args)
    if where is None:
        return None
    try:
        if isinstance(where, PostgresSettings):
            return open_admin(where)
        return open_outbox(where)
    except (FileNotFoundError, PostgresError) as exc:
        print(f"fluxwatch outbox: {exc}", file=sys.stderr)
        return None


def _migrate(args: argparse.Namespace) -> int:
    target = _where(args)
    if target is None:
        return 2
    if not isinstance(target, PostgresSettings):
        print(
            f"fluxwatch outbox migrate: {args.config} sets no bridge.outbox.postgres to migrate to",
            file=sys.stderr,
        )
        return 2
    try:
        source = open_outbox(args.from_sqlite)
    except FileNotFoundError as exc:
        print(f"fluxwatch outbox migrate: {exc}", file=sys.stderr)
        return 2
    try:
        copied = copy_from_sqlite(target, source)
    except PostgresError as exc:
        print(f"fluxwatch outbox migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        source.close()
    shown = ", ".join(f"{table} {n}" for table, n in copied.items())
    print(f"copied into PostgreSQL: {shown}")
    try:
        rollouts = copy_rollouts_from_sqlite(target, args.from_sqlite)
    except PostgresError as exc:
        print(
            f"fluxwatch outbox migrate: the outbox was copied, the rollout state not: {exc}",
            file=sys.stderr,
        )
        return 1
    if rollouts is not None:
        shown = ", ".join(f"{table} {n}" for table, n in rollouts.items())
        print(f"copied the rollout state into PostgreSQL: {shown}")
    return 0


def _ts(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _list(args: argparse.Namespace) -> int:
    conn = _open(args)
    if conn is None:
        return 2
    with contextlib.closing(conn), conn:
        rows = list_notifications(
            conn, status=args.status, destination=args.destination, limit=args.limit
        )
        totals = counts(conn)
    if args.json:
        print(json.dumps({"notifications": rows, "counts": totals}, indent=2, sort_keys=True))
        return 0
    for dest, by_status in sorted(totals.items()):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
        print(f"{dest}: {shown}")
    print(
        f"{'ID':>7}  {'DESTINATION':<20} {'STATUS':<9} {'TRIES':>5} {'EVENTS':>6}  "
        f"{'CREATED (UTC)':<19}  LAST ERROR"
    )
    for r in rows:
        print(
            f"{r['id']:>7}  {r['destination']:<20} {r['status']:<9} {r['attempts']:>5} "
            f"{r['events']:>6}  {_ts(r['created_at']):<19}  {(r['last_error'] or '')[:60]}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    conn = _open(args)
    if conn is None:
        return 2
    with contextlib.closing(conn), conn:
        doc = show_notification(conn, args.id)
    if doc is None:
        print(f"fluxwatch outbox: no notification {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(with_readable_times(doc), indent=2, sort_keys=True))
    return 0


def _replay(args: argparse.Namespace) -> int:
    if not args.ids and not args.all_dead:
        print("fluxwatch outbox replay: give IDs or --all-dead", file=sys.stderr)
        return 2
    conn = _open(args)
    if conn is None:
        return 2
    with contextlib.closing(conn), conn:
        n = replay_notifications(
            conn, args.ids, all_dead=args.all_dead, destination=args.destination, now=time.time()
        )
    print(f"requeued {n} dead notification(s); a running bridge sends them within a second")
    return 0


def _purge(args: argparse.Namespace) -> int:
    statuses = [s for s, on in (("dead", args.dead), ("delivered", args.delivered)) if on]
    if not args.ids and not statuses:
        print("fluxwatch outbox purge: give IDs, --dead or --delivered", file=sys.stderr)
        return 2
    try:
        older = parse_duration(args.older_than, "--older-than", 0.0) if args.older_than else None
    except ConfigError as exc:
        print(f"fluxwatch outbox purge: {exc}", file=sys.stderr)
        return 2
    conn = _open(args)
    if conn is None:
        return 2
    with contextlib.closing(conn), conn:
        n = purge_notifications(
            conn,
            ids=args.ids,
            statuses=statuses,
            older_than=older,
            destination=args.destination,
            now=time.time(),
        )
    print(f"purged {n} notification(s)")
    return 0
