"""`promtool check rules` accepts every generated variant, and `amtool check-config` the shipped
Alertmanager configuration: what Prometheus and Alertmanager themselves would load."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from alerts.alertmanager import example_config
from alerts.render import FORMATS, Format, alerting_rules, dump_yaml, recording_rules, render
from alerts.settings import AlertSettings
from tests.alerts.variants import VARIANTS
from tests.conftest import REPO_ROOT, require_tool


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_promtool_check_rules(variant: str, tmp_path: Path, promtool: str) -> None:
    settings = VARIANTS[variant]
    path = tmp_path / "rules.yml"
    path.write_text(render(settings, "rules"), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    total = len(alerting_rules(settings)) + len(recording_rules(settings))
    assert f"SUCCESS: {total} rules found" in done.stdout


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_prometheusrule_spec_is_the_same_rule_file(variant: str, tmp_path: Path) -> None:
    """The operator object carries exactly the groups promtool just checked."""
    import yaml

    fmt: Format = "prometheusrule"
    assert fmt in FORMATS
    doc = yaml.safe_load(render(VARIANTS[variant], fmt))
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    assert doc["spec"] == yaml.safe_load(render(VARIANTS[variant], "rules"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_amtool_accepts_the_alertmanager_config(variant: str, tmp_path: Path) -> None:
    amtool = require_tool("amtool")
    path = tmp_path / "alertmanager.yml"
    path.write_text(dump_yaml(example_config(VARIANTS[variant])), encoding="utf-8")
    done = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 inhibit rules" in done.stdout


def test_shipped_alertmanager_example_loads() -> None:
    amtool = require_tool("amtool")
    path = REPO_ROOT / "alerts" / "examples" / "alertmanager.yml"
    done = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert AlertSettings().cluster_label in path.read_text(encoding="utf-8")
