"""`fluxwatch dashboards build|push`: generate the Grafana dashboards and provision them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dashboards.build import FORMATS, generate, render
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


def settings_from(args: argparse.Namespace) -> DashboardSettings:
    return DashboardSettings(
        datasource=args.datasource,
        cluster_label=args.cluster_label,
        selector=args.selector,
        controller_selector=args.controller_selector,
        stale_factor=args.stale_factor,
        top=args.top,
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
