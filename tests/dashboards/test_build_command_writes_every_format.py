"""`fluxwatch dashboards build`: one file per dashboard in each format, the same every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dashboards.build import generate
from fluxwatch.cli import main

UIDS = sorted(generate())


def build(out: Path, *args: str) -> int:
    return main(["dashboards", "build", "--out", str(out), *args])


def test_json_files_are_the_dashboards_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    assert build(tmp_path) == 0
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{uid}.json" for uid in UIDS]
    first = {f.name: f.read_bytes() for f in files}
    for name, body in first.items():
        board = json.loads(body)
        assert board["uid"] == name.removesuffix(".json")
        assert body.endswith(b"}\n")
    assert build(tmp_path) == 0
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == first


def test_configmaps_carry_the_sidecar_label(tmp_path: Path) -> None:
    assert build(tmp_path, "--format", "configmap", "--namespace", "obs", "--folder", "Fleet") == 0
    for uid in UIDS:
        doc = yaml.safe_load((tmp_path / f"{uid}.configmap.yaml").read_text())
        assert doc["kind"] == "ConfigMap"
        assert doc["metadata"]["namespace"] == "obs"
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert doc["metadata"]["annotations"]["grafana_folder"] == "Fleet"
        (key,) = doc["data"]
        assert key == f"{uid}.json"
        assert json.loads(doc["data"][key])["uid"] == uid


def test_grafana_operator_resources(tmp_path: Path) -> None:
    assert build(tmp_path, "--format", "grafana-operator") == 0
    for uid in UIDS:
        doc = yaml.safe_load((tmp_path / f"{uid}.grafanadashboard.yaml").read_text())
        assert doc["apiVersion"] == "grafana.integreatly.org/v1beta1"
        assert doc["kind"] == "GrafanaDashboard"
        assert doc["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}
        assert doc["spec"]["folder"] == "Flux"
        assert json.loads(doc["spec"]["json"])["uid"] == uid


def test_settings_flags_reach_the_queries(tmp_path: Path) -> None:
    args = ["--cluster-label", "k8s_cluster", "--selector", 'job="fw"', "--datasource", "mimir"]
    assert build(tmp_path, *args) == 0
    body = (tmp_path / "fluxwatch-fleet.json").read_text()
    assert 'k8s_cluster=~\\"$cluster\\"' in body
    assert 'job=\\"fw\\"' in body
    board = json.loads(body)
    assert board["templating"]["list"][0]["current"]["value"] == "mimir"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster-label", "bad-label"], "cluster_label: 'bad-label' is not a label name"),
        (["--selector", "{job='x'}"], "selector: give matchers only"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert build(tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fluxwatch dashboards build: ")
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert build(blocker / "out") == 2
    assert "fluxwatch dashboards build: " in capsys.readouterr().err


def test_recording_rules_can_be_turned_off(tmp_path: Path) -> None:
    assert build(tmp_path / "rules") == 0
    assert build(tmp_path / "raw", "--no-recording-rules") == 0
    assert (
        "kind_status:flux_cluster_resources:sum"
        in (tmp_path / "rules" / "fluxwatch-fleet.json").read_text()
    )
    raw = (tmp_path / "raw" / "fluxwatch-fleet.json").read_text()
    assert "kind_status:" not in raw
    assert "sum(flux_cluster_resources{" in raw
