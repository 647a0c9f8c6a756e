"""`fluxwatch alerts build`: writes the rules, deterministic, clear errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts.render import render
from alerts.settings import AlertSettings, with_overrides
from fluxwatch.cli import main


def test_build_writes_the_rule_file(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    assert main(["alerts", "build", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["alerts", "build", "--out", str(out)]) == 0
    assert out.read_bytes() == first
    assert first.decode() == render(AlertSettings(), "rules")


def test_build_prometheusrule_with_overrides(tmp_path: Path) -> None:
    out = tmp_path / "rule.yaml"
    args = ["alerts", "build", "--out", str(out), "--format", "prometheusrule"]
    args += ["--set", "failing_for.HelmRelease=2m", "--set", "cluster_label=k8s_cluster"]
    assert main(args) == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["kind"] == "PrometheusRule"
    expected = with_overrides(
        AlertSettings(), ["failing_for.HelmRelease=2m", "cluster_label=k8s_cluster"]
    )
    assert out.read_text() == render(expected, "prometheusrule")
    fors = {
        r["for"]
        for g in doc["spec"]["groups"]
        for r in g["rules"]
        if r.get("alert") == "FluxResourceFailing"
    }
    assert "2m" in fors
    assert "by (k8s_cluster," in out.read_text()


BAD = [
    (["--set", "failing_for=soon"], "--set failing_for: 'soon' is not a duration"),
    (["--set", "failing_for.GitRepository=5m"], "--set failing_for.GitRepository: not a kind"),
    (["--set", "nonsense=1"], "--set nonsense: unknown setting"),
    (["--set", "cluster_label=not-a-label"], "--set cluster_label: 'not-a-label' is not"),
    (["--set", "exporter_selector=job=fluxwatch"], "--set exporter_selector: 'job=fluxwatch'"),
    (["--set", "fleet_failing_min_clusters=0"], "--set fleet_failing_min_clusters: must be"),
    (["--set", "novalue"], "--set 'novalue': expected key=value"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_bad_setting_is_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rules.yml"
    assert main(["alerts", "build", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fluxwatch alerts build: {message}"), err
    assert err.count("\n") == 1
    assert not out.exists()


def test_unwritable_out_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing-dir" / "rules.yml"
    assert main(["alerts", "build", "--out", str(out)]) == 2
    assert f"fluxwatch alerts build: {out}:" in capsys.readouterr().err


def test_alertmanager_config_points_at_the_bridge(tmp_path: Path) -> None:
    out = tmp_path / "am.yml"
    url = "http://127.0.0.1:9095/alertmanager"
    args = ["alerts", "alertmanager-config", "--out", str(out), "--bridge-url", url]
    assert main([*args, "--token-file", "/run/token"]) == 0
    doc = yaml.safe_load(out.read_text())
    (hook,) = doc["receivers"][0]["webhook_configs"]
    assert hook["url"] == url
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/token"
    assert hook["send_resolved"] is True
