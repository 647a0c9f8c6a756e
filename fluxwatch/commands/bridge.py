"""`fluxwatch bridge`: run it; explain routing (`routes test`); show a message (`preview`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fluxwatch.config import ConfigFileError, load_config, require_bridge
from notifiers.app import Bridge
from notifiers.config import BridgeConfig, parse_listen
from notifiers.configkit import ConfigError
from notifiers.intake import (
    IntakeError,
    parse_alertmanager,
    parse_flux_event,
    parse_transition,
)
from notifiers.model import Event
from notifiers.preview import render_preview
from notifiers.routing import route_event
from plumbing.http_server import format_address


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bridge",
        help="run the notification bridge (intake, routing, durable outbox, delivery)",
        description=(
            "Run the notification bridge: receives notification-controller events on /flux, "
            "Alertmanager webhooks on /alertmanager, routes them by owner, de-duplicates, stores "
            "them durably and delivers them with retries. `fluxwatch bridge routes test` explains "
            "where an event would go. See docs/bridge.md."
        ),
        # argparse cannot mark --config required here (the subcommands have their own), so
        # the usage line says it.
        usage=(
            "%(prog)s --config FILE [--listen HOST:PORT] [--state-dir DIR]\n"
            "       %(prog)s SUBCOMMAND ..."
        ),
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="fluxwatch.yaml (required to run the bridge; the whole file is checked, its "
        "bridge: section is run)",
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="override bridge.listen")
    parser.add_argument("--state-dir", type=Path, metavar="DIR", help="override bridge.state_dir")
    parser.set_defaults(handler=_run)
    sub = parser.add_subparsers(dest="bridge_command", metavar="SUBCOMMAND")
    routes = sub.add_parser(
        "routes",
        help="routing tools",
        description="Tools that explain the bridge's routing without running it.",
    )
    routes_sub = routes.add_subparsers(dest="routes_command", metavar="SUBCOMMAND", required=True)
    test = routes_sub.add_parser(
        "test",
        help="print which destinations an event would reach and why",
        description=(
            "Reads an event file (a Flux event as notification-controller posts it, an "
            "Alertmanager webhook payload, or an exporter transition as JSON or YAML) and prints "
            "the owner, the matching routes, the destinations and group keys. Stateless: "
            "de-duplication is not applied."
        ),
    )
    test.add_argument("--config", type=Path, metavar="FILE", required=True, help="fluxwatch.yaml")
    test.add_argument(
        "--event", type=Path, metavar="FILE", required=True, help="event file (JSON or YAML)"
    )
    test.add_argument(
        "--cluster",
        default="",
        metavar="NAME",
        help="cluster, as if the event came on /flux/CLUSTER",
    )
    test.add_argument(
        "--at", default="", metavar="TIME", help="evaluate mute windows at this ISO 8601 time"
    )
    test.add_argument("--json", action="store_true", help="machine-readable output")
    test.set_defaults(handler=_routes_test)
    preview = sub.add_parser(
        "preview",
        help="print exactly what a destination would be sent for an event, secrets masked",
        description=(
            "Renders an event file (as for `routes test`) with the named destination's own "
            "builder and prints the request(s): Block Kit JSON for Slack (paste it into Block "
            "Kit Builder), the Adaptive Card for Teams (paste it into the card designer), the "
            "webhook body. Tokens and secret URLs are masked. Nothing is sent. See "
            "docs/destinations.md."
        ),
    )
    preview.add_argument("--config", type=Path, required=True, help="fluxwatch.yaml")
    preview.add_argument("--destination", required=True, help="a name under bridge.destinations")
    preview.add_argument("--event", type=Path, required=True, help="event file (JSON or YAML)")
    preview.add_argument(
        "--cluster", default="", help="cluster, as if the event came on /flux/CLUSTER"
    )
    preview.set_defaults(handler=_preview)


def _load(path: Path | None) -> BridgeConfig | None:
    if path is None:
        print("fluxwatch bridge: --config FILE is required", file=sys.stderr)
        return None
    try:
        return require_bridge(load_config(path))
    except ConfigFileError as exc:
        print(f"fluxwatch bridge: {exc}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    listen = None
    if args.listen:
        try:
            listen = parse_listen(args.listen, "--listen")
        except ConfigError as exc:
            print(f"fluxwatch bridge: {exc}", file=sys.stderr)
            return 2
    return asyncio.run(_serve(config, listen, args.state_dir))


async def _serve(
    config: BridgeConfig, listen: tuple[str, int] | None, state_dir: Path | None
) -> int:
    bridge = Bridge(config, state_dir=state_dir, listen=listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with bridge:  # a failed start raises ListenError or StateDirError, all stopped again
        # One parsable line so scripts and tests can find the port when 0 was asked for.
        print(
            f"fluxwatch bridge listening on {format_address(bridge.listen[0], bridge.port or 0)}\n"
            f"  Flux events: {bridge.url}/flux/<cluster>  Alertmanager: {bridge.url}/alertmanager"
            f"  metrics: {bridge.url}/metrics",
            flush=True,
        )
        await stop.wait()
    return 0


EVENT_SHAPES = (
    "accepted shapes: a Flux event (an object with involvedObject), an Alertmanager webhook "
    "(an object with alerts) or an exporter transition (an object with type and cluster), "
    "as JSON or YAML"
)


class EventFileError(ValueError):
    """The --event file cannot be read as one of the accepted shapes; one line for the user."""


def read_event_file(path: Path) -> Any:
    """The parsed document; ``EventFileError`` names the problem, its place and the shapes."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EventFileError(f"{path}: cannot read: {reason}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        if text.lstrip().startswith(("{", "[")):  # meant as JSON: its error is the useful one
            raise EventFileError(
                f"{path}:{json_error.lineno}:{json_error.colno}: not valid JSON "
                f"({json_error.msg}; truncated?); {EVENT_SHAPES}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise EventFileError(
            f"{where}: not valid JSON or YAML ({problem}); {EVENT_SHAPES}"
        ) from None


def event_shape(doc: Any) -> str:
    """Which accepted shape ``doc`` has: flux, alertmanager or transition."""
    if isinstance(doc, dict) and "involvedObject" in doc:
        return "flux"
    if isinstance(doc, dict) and "alerts" in doc:
        return "alertmanager"
    if isinstance(doc, dict) and "type" in doc and "cluster" in doc:
        return "transition"
    kinds = {list: "a list", str: "a string", bool: "true or false", int: "a number"}
    found = "an empty file" if doc is None else kinds.get(type(doc), "a number")
    if isinstance(doc, dict):
        keys = ", ".join(sorted(map(str, doc))[:6]) or "no keys"
        found = f"an object with {keys}"
    raise EventFileError(f"found {found}; {EVENT_SHAPES}")


def parse_any(doc: Any, *, cluster: str, default_cluster: str, now: float) -> list[Event]:
    shape = event_shape(doc)
    if shape == "flux":
        return [
            parse_flux_event(
                doc,
                cluster_from_request=cluster,
                default_cluster=default_cluster,
                now=now,
                event_id="routes-test",
            )
        ]
    if shape == "alertmanager":
        return parse_alertmanager(doc, default_cluster=default_cluster, now=now)
    return [parse_transition(doc, now=now, event_id="routes-test")]


def parse_at(text: str) -> float:
    """``--at``: an ISO 8601 time; without a zone it is UTC, ``Z`` is accepted."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EventFileError(
            f"--at {text!r} is not an ISO 8601 time (for example 2026-12-04T09:30:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _events_from_file(
    args: argparse.Namespace, config: BridgeConfig, now: float, command: str
) -> list[Event] | None:
    """The events of ``--event``, or None after one line on stderr naming the problem."""
    try:
        return parse_any(
            read_event_file(args.event),
            cluster=args.cluster,
            default_cluster=config.flux.default_cluster,
            now=now,
        )
    except EventFileError as exc:
        message = str(exc)
        if not message.startswith(str(args.event)):
            message = f"{args.event}: {message}"
        print(f"{command}: {message}", file=sys.stderr)
    except IntakeError as exc:
        print(f"{command}: {args.event}: {exc.reason}: {exc.message}", file=sys.stderr)
    return None


def _preview(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    if args.destination not in config.destinations:
        known = ", ".join(sorted(config.destinations)) or "none configured"
        print(
            f"fluxwatch bridge preview: unknown destination {args.destination!r} (known: {known})",
            file=sys.stderr,
        )
        return 2
    now = datetime.now(tz=UTC).timestamp()
    events = _events_from_file(args, config, now, "fluxwatch bridge preview")
    if events is None:
        return 2
    sys.stdout.write(render_preview(config, args.destination, events, now))
    return 0


def _routes_test(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    try:
        now = parse_at(args.at) if args.at else datetime.now(tz=UTC).timestamp()
    except EventFileError as exc:
        print(f"fluxwatch bridge routes test: {exc}", file=sys.stderr)
        return 2
    events = _events_from_file(args, config, now, "fluxwatch bridge routes test")
    if events is None:
        return 2
    reports: list[dict[str, Any]] = []
    for event in events:
        decision = route_event(
            config.route,
            event,
            owners=config.owners,
            known_destinations=config.destinations,
            time_intervals=config.time_intervals,
            now=now,
        )
        reports.append(
            {
                "event": f"{event.cluster}/{event.kind}/{event.namespace}/{event.name} "
                f"status={event.status} reason={event.reason}",
                "owner": decision.owner.team,
                "trail": list(decision.explanation),
                "destinations": [
                    {
                        "destination": t.destination,
                        "route": t.route,
                        "group_key": t.group_key,
                        "group_wait": t.group_wait,
                        "why": t.why,
                        "noise": t.noise.explain(),
                    }
                    for t in decision.targets
                ],
                "muted": list(decision.muted),
            }
        )
    if args.json:
        print(json.dumps(reports, indent=2, sort_keys=True))
        return 0
    for report in reports:
        print(f"event: {report['event']}")
        for line in report["trail"]:
            print(f"  {line}")
        if not report["destinations"]:
            print("  -> no destination")
        for t in report["destinations"]:
            print(
                f"  -> {t['destination']}  via {t['why']}  group {t['group_key']!r} "
                f"(wait {t['group_wait']:g}s)"
            )
            if t["noise"]:
                print(f"     noise control: {t['noise']}")
        for name in report["muted"]:
            print(f"  -- {name} (muted now)")
    return 0
