"""`fluxwatch run`: the exporter and the notification bridge in one process.

The exporter's status transitions (became failing, recovered, stalled, revision applied, ...) go
straight into the bridge's durable outbox, so a team is told about a failure even when no
notification-controller Alert is configured in that cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from exporter.app import Exporter
from exporter.kube.clusters import ClusterSourceError
from exporter.settings import ExporterSettings
from fluxwatch.config import ConfigFileError, load_config
from fluxwatch.wiring import BridgeTransitionSink
from notifiers.app import Bridge
from notifiers.config import BridgeConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the exporter and the notification bridge in one process",
        description=(
            "Run the exporter (exporter: section of --config) and the notification bridge "
            "(bridge: section) in one process, handing the exporter's status transitions to "
            "the bridge in-process. Stops cleanly on SIGINT/SIGTERM."
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        required=True,
        help="fluxwatch.yaml with an exporter: and a bridge: section (docs/configuration.md)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="directory of the bridge's durable outbox (overrides bridge.state_dir)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigFileError as exc:
        print(f"fluxwatch run: {exc}", file=sys.stderr)
        return 2
    if config.bridge is None:
        print(
            f"fluxwatch run: {args.config}: bridge: section missing "
            "(use `fluxwatch exporter` to run the exporter alone)",
            file=sys.stderr,
        )
        return 2
    bridge_config = config.bridge
    if args.state_dir:
        bridge_config = dataclasses.replace(bridge_config, state_dir=Path(args.state_dir))
    try:
        asyncio.run(_run(config.exporter, bridge_config))
    except ClusterSourceError as exc:
        print(f"fluxwatch run: {exc}", file=sys.stderr)
        return 2
    return 0


async def _run(exporter_settings: ExporterSettings, bridge_config: BridgeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Bridge(bridge_config) as bridge:
        sink = BridgeTransitionSink(bridge)
        async with Exporter(exporter_settings, transition_sink=sink) as exporter:
            log.info("fluxwatch run: metrics at %s/metrics", exporter.url)
            await stop.wait()
    log.info("fluxwatch run: stopped")
