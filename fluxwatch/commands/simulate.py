"""`fluxwatch simulate`: serve a simulated Flux fleet over the Kubernetes API until stopped."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from fluxwatch.tempdirs import private_temp_dir
from plumbing.http_server import parse_address
from simulator.scenario import PRESETS, Scenario, ScenarioError, load_scenario, preset
from simulator.server import SimulatorServer

log = logging.getLogger("fluxwatch.simulate")
STATS_EVERY = 60.0  # real seconds between two progress lines


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="serve a simulated Flux fleet over the real Kubernetes API",
        description=(
            "Serve N virtual Kubernetes clusters running Flux on one HTTPS port, each at "
            "/clusters/<name>, with a kubeconfig holding one context per cluster. Statuses "
            "change as Flux's would: reconciles, commits rolling out, faults, outages."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        choices=PRESETS,
        default="small",
        help="built-in scenario: small (3 clusters x ~18 objects), fleet (50 x 100), "
        "f500 (500 x 100) (default: small)",
    )
    source.add_argument(
        "--scenario", type=Path, metavar="FILE", help="scenario YAML file (see docs/simulator.md)"
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:0",
        metavar="HOST:PORT",
        help="address to serve HTTPS on; port 0 picks a free one (default: 127.0.0.1:0)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the CA, serving certificate and kubeconfig go (default: a new private "
        "temp dir, removed on exit)",
    )
    parser.add_argument(
        "--kubeconfig-out",
        type=Path,
        metavar="PATH",
        help="where to write the kubeconfig (default: <state-dir>/kubeconfig)",
    )
    parser.add_argument(
        "--events-url",
        metavar="URL",
        help="POST notification-controller events here; {cluster} is replaced by the cluster "
        "name (default: no events)",
    )
    parser.add_argument(
        "--events-hmac-key-file",
        type=Path,
        metavar="PATH",
        help="sign event POSTs like a generic-hmac Provider (X-Signature) with this file's key",
    )
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="random seed; the same seed gives the same fleet (default: the scenario's, 1 "
        "for presets)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="how much faster than life the fleet moves: 10 = a 10-minute interval passes in "
        "one minute (default: 1)",
    )
    parser.add_argument(
        "--timestamps",
        choices=("wall", "simulated"),
        default="wall",
        help="wall: timestamps follow the real clock and --time-scale speeds up the fleet's "
        "pace (intervals, durations, rates), so ages computed from now stay true; simulated: "
        "the clock itself runs --time-scale times faster (default: wall)",
    )
    parser.add_argument(
        "--watch-history",
        type=int,
        metavar="N",
        help="events kept per cluster for watch resumption; older versions get 410 Gone "
        "(default: 100000 / clusters, between 100 and 10000, so memory stays bounded)",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between BOOKMARK events on watches that ask for them (default: 5)",
    )


def auto_history(clusters: int) -> int:
    """About 100,000 retained events fleet-wide (a few hundred MB of encoded objects)."""
    return max(100, min(10_000, 100_000 // max(clusters, 1)))


def _listen(value: str) -> tuple[str, int]:
    try:
        return parse_address(value)
    except ValueError as exc:
        raise ValueError(f"--listen: {exc}") from None


def build_server(args: argparse.Namespace, state_dir: Path) -> SimulatorServer:
    """The server the flags describe; raises ScenarioError or ValueError on bad input."""
    scenario: Scenario = load_scenario(args.scenario) if args.scenario else preset(args.preset)
    if args.seed is not None:
        scenario = scenario.with_seed(args.seed)
    if args.time_scale <= 0:
        raise ValueError("--time-scale must be positive")
    if args.bookmark_interval <= 0:
        # The bookmark task sleeps this long between rounds: zero or less would spin the loop.
        raise ValueError("--bookmark-interval must be positive")
    host, port = _listen(args.listen)
    key: bytes | None = None
    if args.events_hmac_key_file is not None:
        try:
            key = args.events_hmac_key_file.read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"--events-hmac-key-file: cannot read: {exc.strerror}") from None
        if not key:
            raise ValueError("--events-hmac-key-file: the file is empty")
    history = args.watch_history
    if history is None:
        history = auto_history(len(scenario.clusters))
    elif history < 0:
        raise ValueError("--watch-history must not be negative")
    log.info("building %s: %d clusters", scenario.name, len(scenario.clusters))
    return SimulatorServer(
        scenario,
        host=host,
        port=port,
        state_dir=state_dir,
        time_scale=args.time_scale,
        watch_history=history,
        bookmark_interval=args.bookmark_interval,
        events_url=args.events_url,
        events_hmac_key=key,
        kubeconfig_path=args.kubeconfig_out,
        wall_clock=args.timestamps == "wall",
    )


def describe(sim: SimulatorServer) -> str:
    """What a newcomer needs to point a client at the simulator."""
    profiles = {name: sim.cluster(name).profile for name in sim.cluster_names}
    legacy = [n for n, p in profiles.items() if p != "current"]
    shown = ", ".join(sim.cluster_names[:6]) + (" ..." if len(sim.cluster_names) > 6 else "")
    lines = [
        f"simulator: {sim.scenario.name}, {len(sim.cluster_names)} clusters, "
        f"{sim.engine.object_count} Flux objects, time x{sim.time_scale:g}",
        f"listening: {sim.base_url}/clusters/<name>  ({shown})",
        f"kubeconfig: {sim.kubeconfig_path}  (one context per cluster)",
        f"try: kubectl --kubeconfig {sim.kubeconfig_path} --context {sim.cluster_names[0]} "
        "get kustomizations -A",
    ]
    if legacy:
        lines.append(f"old Flux (v1beta2/v2beta2 APIs): {', '.join(legacy[:6])}")
    return "\n".join(lines)


async def serve_until_stopped(sim: SimulatorServer, banner: str = "") -> None:
    """Print ``banner``, then run until SIGINT or SIGTERM, logging a progress line now and then.

    The banner comes after the signal handlers are in place: whoever reads it (a script, a test)
    may stop the simulator at once and still get a graceful stop.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if banner:
        print(banner, flush=True)
    # The handlers stay until the loop closes: a second signal while the simulator shuts down
    # must not kill it before its temporary directory is removed.
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), STATS_EVERY)
        except TimeoutError:
            stats = sim.stats()
            log.info(
                "at %s: %d status changes, %d faults, %d watches open",
                stats["simulated_time"],
                stats["status_changes"],
                stats["faults_injected"],
                stats["watchers"],
            )


async def _main(args: argparse.Namespace, state_dir: Path) -> int:
    sim = build_server(args, state_dir)
    async with sim:  # a failed start raises ListenError, with everything stopped again
        await serve_until_stopped(sim, banner=describe(sim))
    print("simulator stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        # The CA key and the bearer tokens live here: a directory we made goes when we go.
        state_dir: Path = args.state_dir or stack.enter_context(private_temp_dir("fluxwatch-sim-"))
        try:
            return asyncio.run(_main(args, state_dir))
        except (ScenarioError, ValueError) as exc:
            print(f"fluxwatch simulate: {exc}", file=sys.stderr)
            return 2
