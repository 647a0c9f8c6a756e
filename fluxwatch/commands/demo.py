"""`fluxwatch demo`: the product against a simulated fleet (for now: the simulator alone)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from fluxwatch.commands.simulate import describe, serve_until_stopped
from simulator.scenario import preset
from simulator.server import SimulatorServer

DEMO_TIME_SCALE = 10.0  # a faster clock so faults and rollouts show up within minutes


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run fluxwatch against a simulated Flux fleet",
        description=(
            "Start the simulator with the small preset (3 clusters, one on an old Flux, one "
            "without image automation) and report what it serves. Stop with Ctrl-C."
        ),
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the kubeconfig and CA go (default: a new temp dir)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEMO_TIME_SCALE,
        metavar="X",
        help="how much faster than life the fleet moves; timestamps keep real time "
        f"(default: {DEMO_TIME_SCALE:g})",
    )
    parser.set_defaults(handler=run)


async def start_simulator(state_dir: Path, time_scale: float) -> SimulatorServer:
    """Start the demo's simulator; the caller stops it (``await sim.stop()``)."""
    sim = SimulatorServer(
        preset("small"), state_dir=state_dir, time_scale=time_scale, wall_clock=True
    )
    await sim.start()
    return sim


async def _main(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="fluxwatch-demo-"))
    sim = await start_simulator(state_dir, args.time_scale)
    try:
        print(describe(sim), flush=True)
        await serve_until_stopped(sim)
    finally:
        await sim.stop()
    print("demo stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        print("fluxwatch demo: --time-scale must be positive", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))
