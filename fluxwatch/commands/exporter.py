"""`fluxwatch exporter`: watch Flux objects in one or many clusters and serve fleet metrics.

Settings come from the ``exporter:`` section of ``--config`` (see docs/exporter.md), then the
command-line flags override single keys. Bad settings or cluster sources exit with status 2 and a
message naming the key or file; nothing starts half-configured.
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

from exporter.app import run_exporter
from exporter.settings import ExporterSettings, validate
from fluxwatch.config import load_config

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "exporter",
        help="watch Flux objects in one or many clusters and serve Prometheus metrics",
        description=(
            "Watch every Flux object in one or many clusters and serve fleet metrics on "
            "/metrics (plus /healthz, /readyz and a status page at /). Clusters come from the "
            "in-cluster service account, a kubeconfig (all or chosen contexts) and/or a "
            "directory of kubeconfig files. Flags override the exporter: section of --config."
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="fluxwatch.yaml whose exporter: section gives the settings (flags override it)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file to read contexts from (default: $KUBECONFIG or ~/.kube/config, "
        "current context only, when no other source is chosen)",
    )
    parser.add_argument(
        "--kubeconfig-dir",
        metavar="DIR",
        help="directory of kubeconfig files, one cluster each; files added or removed are "
        "picked up without a restart",
    )
    parser.add_argument(
        "--context",
        metavar="NAME",
        action="append",
        dest="contexts",
        help="kubeconfig context to watch (repeatable; default: every context of --kubeconfig)",
    )
    parser.add_argument(
        "--context-regex",
        metavar="RE",
        help="watch the kubeconfig contexts whose whole name matches this regular expression",
    )
    parser.add_argument(
        "--in-cluster",
        action="store_true",
        default=None,
        help="watch the cluster the exporter runs in, with its service account",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address of the HTTP server (default 0.0.0.0:9797; port 0 picks a free one)",
    )
    parser.add_argument(
        "--per-object",
        metavar="MODE",
        choices=["all", "not-ready", "none"],
        help="per-object series for all objects, only not-ready ones, or none (aggregates are "
        "always complete; default all)",
    )
    parser.add_argument(
        "--shard",
        metavar="I",
        type=int,
        help="this replica's shard, 0-based (default with --total-shards: the StatefulSet "
        "ordinal from the host name)",
    )
    parser.add_argument(
        "--total-shards",
        metavar="N",
        type=int,
        help="number of replicas splitting the fleet by a stable hash of cluster names (of "
        "object uids when watching a single cluster); default 1",
    )
    parser.add_argument(
        "--namespace",
        metavar="NS",
        help="watch only this namespace (default: all namespaces)",
    )
    parser.add_argument(
        "--label-selector",
        metavar="SEL",
        help="watch only objects matching this label selector, e.g. sharding.fluxcd.io/key=shard1",
    )
    parser.add_argument(
        "--gotk-resource-info",
        action="store_true",
        default=None,
        help="also serve gotk_resource_info as the flux2-monitoring-example "
        "kube-state-metrics config does",
    )
    parser.add_argument(
        "--bridge-url",
        metavar="URL",
        help="POST transitions and rollout reports to the notification bridge at this URL "
        "(fluxwatch bridge in another pod), e.g. http://fluxwatch-bridge:9095",
    )
    parser.add_argument(
        "--bridge-token-file",
        metavar="FILE",
        help="file holding the bearer token the bridge expects (bridge.exporters.token_file)",
    )
    parser.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace) -> ExporterSettings:
    """The config file's exporter: section with the flags applied on top; raises SettingsError."""
    settings = ExporterSettings()
    if args.config:
        # The one loader every command uses; the bridge: section (and its secrets) is not read.
        settings = load_config(Path(args.config), bridge=False).exporter
    overrides: dict[str, Any] = {}
    for flag, key in (
        ("kubeconfig", "kubeconfig"),
        ("kubeconfig_dir", "kubeconfig_dir"),
        ("context_regex", "context_regex"),
        ("in_cluster", "in_cluster"),
        ("listen", "listen"),
        ("per_object", "per_object"),
        ("shard", "shard"),
        ("total_shards", "total_shards"),
        ("namespace", "namespace"),
        ("label_selector", "label_selector"),
        ("gotk_resource_info", "gotk_resource_info"),
        ("bridge_url", "bridge_url"),
        ("bridge_token_file", "bridge_token_file"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = value
    if args.contexts:
        overrides["contexts"] = tuple(args.contexts)
    settings = dataclasses.replace(settings, **overrides)
    validate(settings, key_path="exporter (with flags)")
    return settings


def run(args: argparse.Namespace) -> int:
    """Config, listen and cluster-source errors propagate: the CLI prints them as one line."""
    settings = settings_from_args(args)
    try:
        asyncio.run(_main(settings))
    except ValueError as exc:  # e.g. a kubeconfig the client library cannot use
        print(f"fluxwatch exporter: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


async def _main(settings: ExporterSettings) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await run_exporter(settings)
    except asyncio.CancelledError:
        log.info("exporter stopped")
