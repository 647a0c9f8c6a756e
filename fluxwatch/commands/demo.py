"""`fluxwatch demo`: the whole product against a simulated Flux fleet, in one process.

Three parts run side by side, wired the way a platform team would wire them for real:

- the simulator serves the ``small`` preset (3 clusters, one on an old Flux, one without image
  automation) and POSTs notification-controller events, signed as ``generic-hmac`` does;
- the exporter watches the simulated clusters through the real Kubernetes client and serves
  ``/metrics``; its status transitions go to the bridge in-process;
- the bridge verifies and stores both streams durably, groups them and delivers every
  notification to a console destination that prints it readably;
- when Debian's prometheus and prometheus-alertmanager are installed, a real Prometheus scrapes
  the exporter and the bridge and evaluates the generated alert rules, and a real Alertmanager
  (the shipped example configuration) posts its alerts to the bridge; a scripted HelmRelease
  failure makes one fire within a minute or two. The dashboards are written to a folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dashboards.build import generate as generate_dashboards
from dashboards.build import render as render_dashboards
from exporter.app import Exporter
from exporter.settings import ExporterSettings, parse_listen
from fluxwatch.commands.simulate import describe
from fluxwatch.monitoring import Monitoring, find_binaries, monitoring
from fluxwatch.tempdirs import private_temp_dir
from fluxwatch.wiring import BridgeRolloutReporter, BridgeTransitionSink
from notifiers.app import Bridge
from notifiers.config import BridgeConfig, config_from_mapping
from simulator.scenario import Scenario, ScriptStep, preset
from simulator.server import SimulatorServer

log = logging.getLogger(__name__)

DEMO_TIME_SCALE = 10.0  # a faster clock so faults and rollouts show up within minutes
# The failure the demo stages so an alert fires within the first minutes, and its fix.
SCRIPTED_FAILURE = ("c1", "HelmRelease", "search", "frontend")
FAIL_AT, HEAL_AT = 60.0, 3000.0  # simulated seconds (6 s and 5 min of real time at x10)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the simulator, the exporter and the bridge together on a simulated fleet",
        description=(
            "Start the simulator with the small preset (3 clusters, one on an old Flux, one "
            "without image automation), the exporter watching it and the notification bridge "
            "receiving its signed Flux events and the exporter's transitions; every delivered "
            "notification is printed here (and also sent to Slack or Teams when "
            "FLUXWATCH_SLACK_TOKEN/FLUXWATCH_SLACK_CHANNEL or FLUXWATCH_TEAMS_WEBHOOK_URL are "
            "set). Stop with Ctrl-C."
        ),
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where the kubeconfig, CA, HMAC key and outbox go (default: a new private temp "
        "dir, removed on exit)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEMO_TIME_SCALE,
        metavar="X",
        help="how much faster than life the fleet moves; timestamps keep real time "
        f"(default: {DEMO_TIME_SCALE:g})",
    )
    parser.add_argument(
        "--exporter-listen",
        default="127.0.0.1:9797",
        metavar="HOST:PORT",
        help="address of the exporter's /metrics (default 127.0.0.1:9797; port 0 picks one)",
    )
    parser.add_argument(
        "--bridge-listen",
        default="127.0.0.1:9095",
        metavar="HOST:PORT",
        help="address of the bridge's intake and /metrics (default 127.0.0.1:9095; 0 picks one)",
    )
    parser.add_argument(
        "--prometheus-listen",
        default="127.0.0.1:9090",
        metavar="HOST:PORT",
        help="address of the demo's Prometheus (default 127.0.0.1:9090; port 0 picks one)",
    )
    parser.add_argument(
        "--alertmanager-listen",
        default="127.0.0.1:9093",
        metavar="HOST:PORT",
        help="address of the demo's Alertmanager (default 127.0.0.1:9093; port 0 picks one)",
    )
    parser.add_argument(
        "--no-alerts",
        action="store_true",
        help="do not start Prometheus and Alertmanager even when they are installed",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )
    parser.set_defaults(handler=run)


def demo_scenario() -> Scenario:
    """The small preset plus one scripted HelmRelease failure (and its fix) to alert on."""
    cluster, kind, namespace, name = SCRIPTED_FAILURE
    base = preset("small")
    script = (
        ScriptStep(FAIL_AT, "fail", cluster, kind, namespace, name, fault="upgrade"),
        ScriptStep(HEAL_AT, "heal", cluster, kind, namespace, name),
    )
    return dataclasses.replace(base, script=base.script + script)


def demo_bridge_config(
    state_dir: Path, listen: str, hmac_key_file: Path, alertmanager_token_file: Path | None = None
) -> BridgeConfig:
    """Every event to the console, grouped briefly so a burst prints as one notification.

    With ``FLUXWATCH_SLACK_TOKEN`` and ``FLUXWATCH_SLACK_CHANNEL``, or
    ``FLUXWATCH_TEAMS_WEBHOOK_URL``, set, the same notifications also go to that Slack channel
    or Teams workflow (docs/destinations.md), so a team sees the real messages.
    """
    destinations: dict[str, Any] = {"console": {"type": "console"}}
    if os.environ.get("FLUXWATCH_SLACK_TOKEN") and os.environ.get("FLUXWATCH_SLACK_CHANNEL"):
        destinations["slack"] = {
            "type": "slack",
            "token_env": "FLUXWATCH_SLACK_TOKEN",
            "channel": os.environ["FLUXWATCH_SLACK_CHANNEL"],
        }
    if os.environ.get("FLUXWATCH_TEAMS_WEBHOOK_URL"):
        destinations["teams"] = {"type": "teams", "url_env": "FLUXWATCH_TEAMS_WEBHOOK_URL"}
    document = {
        "bridge": {
            "listen": listen,
            "state_dir": str(state_dir / "outbox"),
            "flux": {"hmac_keys_file": str(hmac_key_file)},
            **(
                {"alertmanager": {"bearer_token_file": str(alertmanager_token_file)}}
                if alertmanager_token_file
                else {}
            ),
            "destinations": destinations,
            "route": {
                "destinations": sorted(destinations),
                "group_by": ["root_cause", "status", "revision"],
                "group_wait": "2s",
                "group_interval": "10s",
            },
        }
    }
    return config_from_mapping(document, base_dir=state_dir)


def _write_secret(state_dir: Path, name: str) -> Path:
    path = state_dir / name
    path.write_text(secrets.token_hex(24) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _write_dashboards(state_dir: Path) -> Path:
    """The Grafana dashboards as JSON files, ready to import or provision."""
    folder = state_dir / "dashboards"
    folder.mkdir(exist_ok=True)
    for name, content in render_dashboards(generate_dashboards(), "json").items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def where_to_look(
    exporter_url: str, bridge_url: str, mon: Monitoring | None, dashboards: Path
) -> str:
    """One short block: every URL a user would open, and what to look at first."""
    cluster, kind, namespace, name = SCRIPTED_FAILURE
    rows = [
        ("exporter status page", f"{exporter_url}/"),
        ("exporter metrics", f"{exporter_url}/metrics"),
    ]
    if mon is not None:
        rows += [
            ("Prometheus alerts", f"{mon.prometheus_url}/alerts"),
            ("Alertmanager", f"{mon.alertmanager_url}/#/alerts"),
        ]
    rows += [
        ("bridge status", f"{bridge_url}/readyz  (metrics: {bridge_url}/metrics)"),
        ("dashboards (Grafana JSON)", str(dashboards)),
    ]
    width = max(len(label) for label, _ in rows)
    lines = ["", "fluxwatch demo is up:"]
    lines += [f"  {label.ljust(width)}  {url}" for label, url in rows]
    if mon is not None:
        lines.append(
            f"Look first at the Prometheus alerts page: {kind} {namespace}/{name} on {cluster} "
            "starts failing in a few seconds and soon runs out of retries; "
            "FluxHelmReleaseRetriesExhausted fires within about a minute and its notification "
            "prints below, sent by Alertmanager through the bridge (it resolves after the "
            "scripted fix, about 5 minutes in)."
        )
    else:
        lines.append(
            "Prometheus and Alertmanager are not installed (make tools installs them), so no "
            f"alert rules run; look at the status page: {kind} {namespace}/{name} on {cluster} "
            "starts failing in a few seconds and the bridge prints it below."
        )
    return "\n".join(lines) + "\n"


def _write_hmac_key(state_dir: Path) -> tuple[str, Path]:
    """A fresh key, shared by the simulator (signing) and the bridge (verifying)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    hmac_key = secrets.token_hex(32)
    key_file = state_dir / "flux-hmac.key"
    key_file.write_text(hmac_key + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    return hmac_key, key_file


async def _main(args: argparse.Namespace, state_dir: Path, hmac_key: str, key_file: Path) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)

    binaries = None if args.no_alerts else find_binaries()
    token_file = _write_secret(state_dir, "alertmanager-bridge.token")
    bridge_config = demo_bridge_config(state_dir, args.bridge_listen, key_file, token_file)
    async with contextlib.AsyncExitStack() as stack:
        bridge = await stack.enter_async_context(Bridge(bridge_config, console=sys.stdout))
        bridge_url = bridge.url
        sim = SimulatorServer(
            demo_scenario(),
            state_dir=state_dir,
            time_scale=args.time_scale,
            wall_clock=True,
            events_url=f"{bridge_url}/flux/{{cluster}}",
            events_hmac_key=hmac_key,
        )
        await stack.enter_async_context(sim)
        settings = ExporterSettings(
            kubeconfig=str(sim.kubeconfig_path), listen=args.exporter_listen
        )
        exp = await stack.enter_async_context(
            Exporter(
                settings,
                transition_sink=BridgeTransitionSink(bridge),
                rollout_reporter=BridgeRolloutReporter(bridge),
            )
        )
        mon: Monitoring | None = None
        if binaries is not None:
            mon = await stack.enter_async_context(
                monitoring(
                    binaries,
                    state_dir,
                    exporter=urlsplit(exp.url).netloc,
                    bridge=urlsplit(bridge_url).netloc,
                    token_file=token_file,
                    prometheus_listen=parse_listen(args.prometheus_listen),
                    alertmanager_listen=parse_listen(args.alertmanager_listen),
                )
            )
        dashboards_dir = _write_dashboards(state_dir)
        print(describe(sim), flush=True)
        print(f"exporter: {exp.url}/metrics  (status page: {exp.url}/)", flush=True)
        print(
            f"bridge: {bridge_url}/metrics  (Flux events in at {bridge_url}/flux/<cluster>,"
            " signed with generic-hmac)",
            flush=True,
        )
        print(where_to_look(exp.url, bridge_url, mon, dashboards_dir), flush=True)
        print("notifications follow as they are delivered; Ctrl-C stops", flush=True)
        await stop.wait()
    print("demo stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        print("fluxwatch demo: --time-scale must be positive", file=sys.stderr)
        return 2
    for flag, value in (
        ("--exporter-listen", args.exporter_listen),
        ("--bridge-listen", args.bridge_listen),
        ("--prometheus-listen", args.prometheus_listen),
        ("--alertmanager-listen", args.alertmanager_listen),
    ):
        # Checked here: a bad address would otherwise surface as a traceback after startup.
        try:
            parse_listen(value)
        except ValueError as exc:
            print(f"fluxwatch demo: {flag}: {exc}", file=sys.stderr)
            return 2
    with contextlib.ExitStack() as stack:
        # The CA key, tokens and HMAC key live here: a directory we made goes when we go.
        state_dir: Path = args.state_dir or stack.enter_context(private_temp_dir("fluxwatch-demo-"))
        try:
            hmac_key, key_file = _write_hmac_key(state_dir)
        except OSError as exc:
            print(f"fluxwatch demo: cannot write to {state_dir}: {exc.strerror}", file=sys.stderr)
            return 2
        # A port in use or an unusable state directory propagates: one line, exit status 2.
        return asyncio.run(_main(args, state_dir, hmac_key, key_file))
