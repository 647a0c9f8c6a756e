"""Scenario YAML: the example loads; bad files get an error naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.fleet import build_cluster
from simulator.scenario import PRESETS, ScenarioError, load_scenario, preset
from simulator.server import SimulatorServer

EXAMPLE = Path(__file__).resolve().parents[2] / "simulator" / "scenarios" / "example.yaml"


def test_example_scenario_loads() -> None:
    scenario = load_scenario(EXAMPLE)
    assert [c.name for c in scenario.clusters] == [
        "prod-eu-1",
        "prod-us-1",
        "edge-000",
        "edge-001",
        "edge-002",
    ]
    assert scenario.clusters[2].flux == "legacy"
    assert scenario.script[0].fault == "upgrade"
    assert scenario.seed == 42


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [", "not valid YAML"),
        ("- a\n- b\n", "top level: expected a mapping"),
        ("clusters: []", "clusters: at least one cluster is required"),
        ("clusters: [{name: a, flux: ancient}]", "clusters[0].flux: 'ancient' is not one of"),
        ("clusters: [{name: a, colour: red}]", "clusters[0].colour: unknown key"),
        ("clusters: [{name: a}, {name: a}]", "cluster 'a' is defined twice"),
        ("clusters: [{name: a, apps: {git: many}}]", "clusters[0].apps.git: expected an integer"),
        ("clusters: [{name: 'a b'}]", "is not a DNS label"),
        ("clusters: [{name: a}]\nseed: -1", "seed: must not be negative"),
        ("clusters: [{name: a}]\nfaults: {weights: {flood: 1}}", "faults.weights.flood"),
        ("clusters: [{name: a}]\nfaults: {heal_after: [9, 1]}", "faults.heal_after"),
        (
            "clusters: [{name: a}]\nscript: [{at: 1, action: explode}]",
            "script[0].action: 'explode' is not one of",
        ),
        (
            "clusters: [{name: a}]\nscript: [{at: 1, action: fail, kind: Bucket, name: x}]",
            "script[0].fault: required",
        ),
        (
            "clusters: [{name: a}]\n"
            "script: [{at: 1, action: fail, kind: Bucket, name: x, fault: upgrade}]",
            "Bucket cannot suffer a 'upgrade' fault",
        ),
        (
            "clusters: [{name: a}]\nscript: [{at: 1, action: heal, cluster: b, kind: Bucket}]",
            "script[0].cluster: no cluster named 'b'",
        ),
    ],
    ids=[
        "bad-yaml",
        "not-a-mapping",
        "no-clusters",
        "bad-profile",
        "unknown-key",
        "duplicate-cluster",
        "non-integer-count",
        "bad-name",
        "negative-seed",
        "unknown-fault",
        "bad-range",
        "unknown-action",
        "missing-fault",
        "wrong-fault-for-kind",
        "unknown-cluster",
    ],
)
def test_bad_scenario_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("name", "clusters", "objects"),
    [("small", 3, (15, 22)), ("fleet", 50, (90, 100)), ("f500", 500, (90, 100))],
    ids=list(PRESETS),
)
def test_presets_have_the_documented_size(
    name: str, clusters: int, objects: tuple[int, int]
) -> None:
    scenario = preset(name, seed=1)
    assert len(scenario.clusters) == clusters
    counts = [len(build_cluster(1, c, 0.0)) for c in scenario.clusters[:20]]
    assert all(objects[0] <= n <= objects[1] for n in counts), counts
    if name != "small":
        current = [
            n for c, n in zip(scenario.clusters, counts, strict=False) if c.flux == "current"
        ]
        assert set(current) == {100}


def test_unknown_preset() -> None:
    with pytest.raises(ScenarioError, match="unknown preset 'huge'"):
        preset("huge")


def test_example_scenario_runs_its_script(tmp_path: Path) -> None:
    server = SimulatorServer(load_scenario(EXAMPLE), state_dir=tmp_path, time_scale=None)
    assert server.engine.object_count == 2 * 26 + 3 * 23  # edge clusters lack image automation


def test_script_naming_a_missing_object_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(
        "clusters: [{name: a}]\n"
        "script: [{at: 5, action: heal, kind: HelmRelease, namespace: search, name: frontnd}]\n"
    )
    with pytest.raises(ScenarioError) as error:
        SimulatorServer(load_scenario(path), state_dir=tmp_path)
    assert str(error.value) == (f"{path}: script[0]: no HelmRelease search/frontnd in any cluster")
