"""The chart's generated files match what `make chart-assets` produces from today's code.

A dashboard changed in dashboards/ without `make chart-assets` would ship the old one in the
chart; this fails instead, naming the stale files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT
from tests.deploy.renders import CHART, render_chart


def _generate(into: Path) -> None:
    env = {**os.environ, "FLUXWATCH": str(Path(sys.executable).parent / "fluxwatch")}
    subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "chart-assets.sh"), str(into)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".gitkeep"
    }


def test_generated_files_are_fresh(tmp_path: Path) -> None:
    _generate(tmp_path)
    committed, fresh = _tree(CHART / "files"), _tree(tmp_path)
    assert fresh, "the generator wrote nothing"
    stale = sorted(n for n in committed.keys() | fresh.keys() if committed.get(n) != fresh.get(n))
    assert stale == [], f"run `make chart-assets`: {stale}"


def test_every_dashboard_becomes_a_sidecar_config_map() -> None:
    dashboards = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert dashboards
    maps = [
        o
        for o in render_chart({"monitoring": {"dashboards": {"enabled": True}}})
        if o["kind"] == "ConfigMap" and o["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    by_file = {key: value for m in maps for key, value in m["data"].items()}
    assert sorted(by_file) == [p.name for p in dashboards]
    for path in dashboards:
        assert json.loads(by_file[path.name]) == json.loads(path.read_text())
    for config_map in maps:
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "Flux"
        # A ConfigMap holds at most 1 MiB.
        assert sum(len(v.encode()) for v in config_map["data"].values()) < 1024 * 1024


def test_rendered_prometheus_rule_passes_promtool(promtool: str, tmp_path: Path) -> None:
    """The PrometheusRule's groups are a valid rule file, and every generated group is in it."""
    values = {"monitoring": {"prometheusRule": {"enabled": True}}}
    (rule,) = [o for o in render_chart(values) if o["kind"] == "PrometheusRule"]
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    generated = yaml.safe_load((CHART / "files" / "alerts" / "fluxwatch.rules.yaml").read_text())
    assert rule["spec"]["groups"] == generated["groups"]


def test_scrape_jobs_carry_the_names_the_rules_select() -> None:
    """The rules select job="fluxwatch" and job="fluxwatch-bridge"; the ServiceMonitors set them."""
    rules = (CHART / "files" / "alerts" / "fluxwatch.rules.yaml").read_text()
    values = {"monitoring": {"serviceMonitor": {"enabled": True}}}
    monitors = [o for o in render_chart(values) if o["kind"] == "ServiceMonitor"]
    jobs = {
        relabel["replacement"]
        for monitor in monitors
        for endpoint in monitor["spec"]["endpoints"]
        for relabel in endpoint["relabelings"]
        if relabel["targetLabel"] == "job"
    }
    assert jobs == {"fluxwatch", "fluxwatch-bridge"}
    for job in jobs:
        assert f'job="{job}"' in rules
