"""Which clusters a kubeconfig yields: all contexts, chosen names, a regex, renamed entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.kube.clusters import (
    ClusterSourceError,
    ClusterSpec,
    select_contexts,
    static_clusters,
)
from exporter.settings import ClusterEntry, ExporterSettings

AVAILABLE = ["prod-eu", "prod-us", "staging-eu", "dev"]

SELECT = [
    ("nothing-chosen-means-all", [], "", AVAILABLE),
    ("by-name", ["dev", "prod-us"], "", ["prod-us", "dev"]),
    ("by-regex-full-match", [], "prod-.*", ["prod-eu", "prod-us"]),
    ("name-and-regex-union", ["dev"], ".*-eu", ["prod-eu", "staging-eu", "dev"]),
]


@pytest.mark.parametrize(
    ("names", "regex", "expected"), [c[1:] for c in SELECT], ids=[c[0] for c in SELECT]
)
def test_select_contexts(names: list[str], regex: str, expected: list[str]) -> None:
    assert select_contexts(AVAILABLE, names, regex) == expected


def test_unknown_context_name_is_an_error_not_a_missing_cluster() -> None:
    with pytest.raises(ClusterSourceError, match="'qa' is not in the kubeconfig"):
        select_contexts(AVAILABLE, ["qa"], "")


@pytest.mark.parametrize(
    ("names", "regex"),
    [([], "eu"), ([], "qa-.*"), (["dev"], "qa-.*")],
    ids=["regex-is-not-a-search", "matches-nothing", "even-beside-a-name"],
)
def test_a_regex_matching_no_context_is_an_error(names: list[str], regex: str) -> None:
    with pytest.raises(ClusterSourceError) as caught:
        select_contexts(AVAILABLE, names, regex, "/etc/fleet.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert (
        f"context regex {regex!r} matches no context of the kubeconfig /etc/fleet.yaml" in message
    )
    assert "prod-eu, prod-us, staging-eu, dev" in message


def _kubeconfig(path: Path, contexts: list[str], current: str = "") -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.example"}} for c in contexts],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u"}} for c in contexts],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_static_clusters_from_settings(tmp_path: Path) -> None:
    main = _kubeconfig(tmp_path / "main", AVAILABLE, current="dev")
    other = _kubeconfig(tmp_path / "other", ["edge-1"])
    settings = ExporterSettings(
        kubeconfig=main,
        context_regex="prod-.*",
        clusters=(ClusterEntry("edge-1", name="edge", kubeconfig=other),),
    )
    assert static_clusters(settings) == [
        ClusterSpec("prod-eu", "kubeconfig", main, "prod-eu"),
        ClusterSpec("prod-us", "kubeconfig", main, "prod-us"),
        ClusterSpec("edge", "kubeconfig", other, "edge-1"),
    ]


def test_no_source_chosen_uses_the_current_context_like_kubectl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _kubeconfig(tmp_path / "config", AVAILABLE, current="staging-eu")
    monkeypatch.setenv("KUBECONFIG", path)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert static_clusters(ExporterSettings()) == [
        ClusterSpec("staging-eu", "kubeconfig", path, "staging-eu")
    ]


def test_duplicate_cluster_names_are_rejected(tmp_path: Path) -> None:
    main = _kubeconfig(tmp_path / "main", AVAILABLE)
    settings = ExporterSettings(
        kubeconfig=main, contexts=("dev",), clusters=(ClusterEntry("prod-eu", name="dev"),)
    )
    with pytest.raises(ClusterSourceError, match="'dev' is used twice"):
        static_clusters(settings)


@pytest.mark.parametrize(
    ("content", "message"),
    [("[unclosed", "not valid YAML"), ("- a list", "not a kubeconfig")],
    ids=["bad-yaml", "not-a-mapping"],
)
def test_bad_kubeconfig_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "broken"
    path.write_text(content)
    with pytest.raises(ClusterSourceError, match=message) as info:
        static_clusters(ExporterSettings(kubeconfig=str(path)))
    assert str(path) in str(info.value)


def test_missing_kubeconfig_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ClusterSourceError, match="no such kubeconfig file"):
        static_clusters(ExporterSettings(kubeconfig=str(tmp_path / "absent")))


async def test_exporter_watches_exactly_the_chosen_contexts(tmp_path: Path) -> None:
    from exporter.app import Exporter
    from simulator.scenario import preset
    from simulator.server import SimulatorServer
    from tests.exporter.kube.conftest import eventually, settings_for

    async with SimulatorServer(preset("small", seed=2), state_dir=tmp_path / "sim") as sim:
        settings = settings_for(sim, contexts=("c1",), context_regex="c3-.*")
        async with Exporter(settings) as exporter:
            await eventually(exporter.ready)
            assert set(exporter.store.clusters) == {"c1", "c3-legacy"}
            assert all(cl.state and cl.state.synced for cl in exporter.store.clusters.values())
