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
from pathlib import Path
from typing import Any

from exporter.app import Exporter
from exporter.settings import ExporterSettings
from fluxwatch.config import load_config, require_bridge
from fluxwatch.wiring import BridgeRolloutReporter, BridgeTransitionSink
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
    """Config, listen and state-directory errors propagate: the CLI prints them as one line."""
    config = load_config(Path(args.config))
    bridge_config = require_bridge(config)
    if args.state_dir:
        bridge_config = dataclasses.replace(bridge_config, state_dir=Path(args.state_dir))
    asyncio.run(_run(config.exporter, bridge_config))
    return 0


async def _run(exporter_settings: ExporterSettings, bridge_config: BridgeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Bridge(bridge_config) as bridge:
        sink = BridgeTransitionSink(bridge)
        reporter = BridgeRolloutReporter(bridge)
        async with Exporter(
            exporter_settings, transition_sink=sink, rollout_reporter=reporter
        ) as exporter:
            print(
                f"exporter: {exporter.url}/metrics  (status page: {exporter.url}/)\n"
                f"bridge: Flux events at {bridge.url}/flux/<cluster>, Alertmanager at "
                f"{bridge.url}/alertmanager, metrics at {bridge.url}/metrics",
                flush=True,
            )
            await stop.wait()
    log.info("fluxwatch run: stopped")
