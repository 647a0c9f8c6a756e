"""`fluxwatch alerts`: write the generated Prometheus rules and the example Alertmanager config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from alerts.alertmanager import DEFAULT_BRIDGE_URL, DEFAULT_TOKEN_FILE, example_config
from alerts.render import FORMATS, dump_yaml, render
from alerts.settings import AlertSettings, SettingsError, setting_keys, with_overrides


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="generate Prometheus alerting/recording rules and the Alertmanager example",
        description=(
            "Generate the fluxwatch alerting and recording rules (docs/alerts.md) from the metric "
            "catalogue, and the example Alertmanager configuration that sends them to the bridge."
        ),
    )
    sub = parser.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND", required=True)
    build = sub.add_parser(
        "build",
        help="write the rules as a Prometheus rule file or a PrometheusRule",
        description=(
            "Write every alerting and recording rule. The output is deterministic: the same "
            "settings give byte-identical files."
        ),
    )
    build.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="file to write ('-' for stdout)"
    )
    build.add_argument(
        "--format",
        choices=FORMATS,
        default="rules",
        help="rules: a Prometheus rule file (rule_files:); prometheusrule: a Prometheus Operator "
        "PrometheusRule object (default: rules)",
    )
    _settings_flags(build)
    build.set_defaults(handler=run_build)

    am = sub.add_parser(
        "alertmanager-config",
        help="write the example Alertmanager configuration (bridge receiver, inhibition)",
        description=(
            "Write an Alertmanager configuration that sends every alert to the bridge's "
            "/alertmanager intake and inhibits per-cluster alerts under a fleet-level one."
        ),
    )
    am.add_argument("--out", type=Path, required=True, metavar="FILE", help="'-' for stdout")
    am.add_argument(
        "--bridge-url",
        default=DEFAULT_BRIDGE_URL,
        metavar="URL",
        help=f"the bridge's /alertmanager URL (default: {DEFAULT_BRIDGE_URL})",
    )
    am.add_argument(
        "--token-file",
        default=DEFAULT_TOKEN_FILE,
        metavar="PATH",
        help="file holding the bridge's bearer token, as Alertmanager will read it "
        f"(default: {DEFAULT_TOKEN_FILE})",
    )
    _settings_flags(am)
    am.set_defaults(handler=run_alertmanager)


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, repeatable: thresholds (failing_for=20m, "
        "failing_for.HelmRelease=10m, fleet_failing_min_clusters=5, ...), selectors "
        "(exporter_selector='job=\"flux\"'), cluster_label, runbook_base_url; "
        "keys: " + ", ".join(setting_keys()),
    )


def settings_from(args: argparse.Namespace) -> AlertSettings:
    return with_overrides(AlertSettings(), args.set)


def _write(out: Path, text: str) -> None:
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def run_build(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        _write(args.out, render(settings, args.format))
    except SettingsError as exc:
        print(f"fluxwatch alerts build: --set {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fluxwatch alerts build: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def run_alertmanager(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        config = example_config(settings, args.bridge_url, args.token_file)
        _write(args.out, dump_yaml(config))
    except SettingsError as exc:
        print(f"fluxwatch alerts alertmanager-config: --set {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fluxwatch alerts alertmanager-config: {args.out}: {exc.strerror or exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    return 0
