"""`fluxwatch dashboards build|push`: generate the Grafana dashboards and provision them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp

from dashboards.build import FORMATS, generate, render
from dashboards.push import GrafanaClient, GrafanaError, Report
from dashboards.push import push as push_dashboards
from dashboards.settings import DashboardSettings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboards",
        help="generate the Grafana dashboards, or upload them to Grafana",
        description=(
            "The fleet overview, cluster, team, sources, rollouts, delivery, Flux controllers and "
            "fluxwatch dashboards, generated from the metric catalogue (see docs/dashboards.md)."
        ),
    )
    sub = parser.add_subparsers(dest="dashboards_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "build",
        help="write the dashboards as JSON, sidecar ConfigMaps or GrafanaDashboard resources",
        description="Write one file per dashboard into DIR. The output is deterministic.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help='json: Grafana JSON model; configmap: ConfigMaps labelled grafana_dashboard: "1" '
        "for the kube-prometheus-stack sidecar; grafana-operator: GrafanaDashboard resources "
        "(default: json)",
    )
    p.add_argument(
        "--namespace",
        default="monitoring",
        help="namespace of the ConfigMaps or GrafanaDashboards (default: monitoring)",
    )
    p.add_argument(
        "--folder",
        default="Flux",
        help="Grafana folder (sidecar annotation / operator) (default: Flux)",
    )
    add_settings_arguments(p)
    p.set_defaults(handler=build)

    p = sub.add_parser(
        "push",
        help="upload the dashboards to Grafana through its HTTP API",
        description=(
            "Create or update the fluxwatch dashboards in a Grafana folder, overwriting only "
            "dashboards fluxwatch owns (its UIDs, tagged fluxwatch), and report what changed. "
            "An edit made in Grafana meanwhile is refused (412), never overwritten."
        ),
    )
    p.add_argument(
        "--grafana-url", required=True, metavar="URL", help="e.g. https://grafana.example"
    )
    p.add_argument(
        "--token-file",
        type=Path,
        required=True,
        metavar="FILE",
        help="file holding a Grafana service account token (Editor)",
    )
    folder = p.add_mutually_exclusive_group()
    folder.add_argument(
        "--folder",
        default="Flux",
        metavar="NAME",
        help="folder title, created if missing (default: Flux)",
    )
    folder.add_argument("--folder-uid", metavar="UID", help="an existing folder's UID instead")
    p.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default: 30)"
    )
    add_settings_arguments(p)
    p.set_defaults(handler=push)


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    d = DashboardSettings()
    parser.add_argument(
        "--datasource",
        default=d.datasource,
        help=f"default Prometheus datasource name or UID (default: {d.datasource})",
    )
    parser.add_argument(
        "--cluster-label",
        default=d.cluster_label,
        metavar="LABEL",
        help="label naming the cluster, e.g. an external label renamed by Thanos or Mimir "
        f"(default: {d.cluster_label})",
    )
    parser.add_argument(
        "--selector",
        default=d.selector,
        metavar="MATCHERS",
        help="extra label matchers for fluxwatch series, e.g. 'job=\"fluxwatch\"' (default: none)",
    )
    parser.add_argument(
        "--controller-selector",
        default=d.controller_selector,
        metavar="MATCHERS",
        help=f"label matchers for the Flux controllers' series (default: {d.controller_selector})",
    )
    parser.add_argument(
        "--stale-factor",
        type=float,
        default=d.stale_factor,
        metavar="N",
        help=f"stale after N intervals without a run (default: {d.stale_factor:g})",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=d.top,
        metavar="N",
        help=f"rows in top-N tables (default: {d.top})",
    )
    parser.add_argument(
        "--no-recording-rules",
        dest="recording_rules",
        action="store_false",
        help="query the exporter's series directly instead of the recording rules of "
        "`fluxwatch alerts build` (fine for small fleets; see docs/dashboards.md)",
    )


def settings_from(args: argparse.Namespace) -> DashboardSettings:
    return DashboardSettings(
        datasource=args.datasource,
        cluster_label=args.cluster_label,
        selector=args.selector,
        controller_selector=args.controller_selector,
        stale_factor=args.stale_factor,
        top=args.top,
        recording_rules=args.recording_rules,
    )


def build(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"fluxwatch dashboards build: {exc}", file=sys.stderr)
        return 2
    files = render(generate(settings), args.format, namespace=args.namespace, folder=args.folder)
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (out / name).write_text(content, encoding="utf-8")
    except OSError as exc:
        print(f"fluxwatch dashboards build: {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {len(files)} dashboards ({args.format}) to {out}")
    return 0


def _token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"--token-file {path}: cannot read: {exc.strerror}") from None
    if not token:
        raise ValueError(f"--token-file {path}: the file is empty")
    return token


async def _push(args: argparse.Namespace, settings: DashboardSettings, token: str) -> Report:
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        client = GrafanaClient(http, args.grafana_url, token)
        if args.folder_uid:
            folder_uid = str((await client.folder_by_uid(args.folder_uid))["uid"])
        else:
            folder_uid = await client.folder_by_title(args.folder)
        return await push_dashboards(client, generate(settings), folder_uid)


def push(args: argparse.Namespace) -> int:
    """Exit 0 when every dashboard is in place, 1 when some were refused or not ours, 2 when
    nothing could be done (bad flags, token, folder, Grafana unreachable)."""
    try:
        settings = settings_from(args)
        token = _token(args.token_file)
        if not args.grafana_url.startswith(("http://", "https://")):
            raise ValueError(f"--grafana-url {args.grafana_url!r}: expected http(s)://HOST")
        report = asyncio.run(_push(args, settings, token))
    except ValueError as exc:
        print(f"fluxwatch dashboards push: {exc}", file=sys.stderr)
        return 2
    except GrafanaError as exc:
        hint = {401: " (is the token valid?)", 403: " (the token needs Editor rights)"}
        print(f"fluxwatch dashboards push: {exc}{hint.get(exc.status, '')}", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(
            f"fluxwatch dashboards push: {args.grafana_url}: {exc or 'timed out'}", file=sys.stderr
        )
        return 2
    for line in report.lines():
        print(line)
    conflicts = [s for s in report.steps if s.action == "conflict"]
    return 1 if report.failed or conflicts else 0
