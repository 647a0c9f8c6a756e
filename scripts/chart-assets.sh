#!/usr/bin/env bash
# Regenerates the Helm chart's generated files from the metric catalogue: the Grafana dashboards
# (`fluxwatch dashboards build`) and the alerting and recording rules (`fluxwatch alerts build`,
# default settings: the chart's ServiceMonitors give the jobs the names the rules select). tests/deploy/test_chart_assets_are_fresh.py runs this same
# script into a temporary directory and fails when the committed files differ.
#   usage: scripts/chart-assets.sh [FILES_DIR]   (default deploy/helm/fluxwatch/files)
set -euo pipefail
out="${1:-deploy/helm/fluxwatch/files}"
fluxwatch="${FLUXWATCH:-.venv/bin/fluxwatch}"

rm -rf "$out/dashboards" "$out/alerts"
mkdir -p "$out/dashboards" "$out/alerts"
"$fluxwatch" dashboards build --out "$out/dashboards" --format json >/dev/null
"$fluxwatch" alerts build --out "$out/alerts/fluxwatch.rules.yaml" --format rules >/dev/null
