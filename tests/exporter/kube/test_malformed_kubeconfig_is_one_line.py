"""A malformed kubeconfig (an empty or garbage file, as a wrongly mounted Secret gives) is one
line naming the file, never a traceback: with --kubeconfig the exporter exits 2; in a kubeconfig
directory the file is reported and counted, and the other files are still watched. A context
regex that matches nothing is an error too."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from catalogue import exporter as catalogue
from exporter.app import Exporter
from fluxwatch.cli import main
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, scrape, settings_for, value
from tests.exporter.kube.test_kubeconfig_dir_follows_files import write_single_context

GOOD = (
    "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
    "contexts: [{name: a, context: {cluster: a, user: a}}]\n"
    "clusters: [{name: a, cluster: {server: 'https://127.0.0.1:1'}}]\n"
    "users: [{name: a, user: {token: t}}]\n"
)

MALFORMED: list[tuple[str, bytes, str]] = [
    ("empty", b"", "empty file, not a kubeconfig"),
    ("blank", b"\n  \n", "empty file, not a kubeconfig"),
    ("binary", bytes(range(128, 256)), "not a kubeconfig (not UTF-8 text)"),
    ("bad-yaml", b"\t\tclusters: [", "not valid YAML at line 1, column 1"),
    ("a-list", b"- a\n- b\n", "not a kubeconfig (expected a mapping"),
    ("a-string", b"hello\n", "not a kubeconfig (expected a mapping"),
    (
        "users-a-number",
        GOOD.replace("users: [", "x: [").encode() + b"users: 5\n",
        "users must be a list",
    ),
    (
        "clusters-a-string",
        GOOD.replace("clusters: [", "x: [").encode() + b"clusters: c\n",
        "clusters must be a list",
    ),
    ("contexts-a-mapping", b"contexts: {a: b}\n", "contexts must be a list"),
]


@pytest.mark.parametrize(
    ("content", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_kubeconfig_flag_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    assert main(["exporter", "--kubeconfig", str(path), "--listen", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"fluxwatch exporter: {path}: "), err
    assert message in err
    assert "Traceback" not in err


def test_a_context_regex_matching_nothing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(GOOD)
    code = main(
        ["exporter", "--kubeconfig", str(path), "--context-regex", "prod-.*", "--listen", ":0"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        f"fluxwatch exporter: context regex 'prod-.*' matches no context of the kubeconfig "
        f"{path} (it must match a whole name; has: a)\n"
    )


async def test_malformed_files_in_the_directory_are_reported_counted_and_skipped(
    sim: SimulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "clusters"
    directory.mkdir()
    write_single_context(sim, "c1", directory / "c1.yaml")
    for name, content, _ in MALFORMED[:4]:
        (directory / name).write_bytes(content)
    settings = settings_for(
        sim, kubeconfig="", kubeconfig_dir=str(directory), dir_scan_interval_seconds=0.1
    )
    caplog.set_level(logging.WARNING, logger="exporter")
    async with Exporter(settings) as exporter:
        await eventually(exporter.ready)
        assert set(exporter.store.clusters) == {"c1"}
        samples = await scrape(exporter.url)
        assert value(samples, catalogue.KUBECONFIG_FILES_UNUSABLE.name) == 4
        assert value(samples, "flux_cluster_synced", cluster="c1") == 1

        fixed = GOOD.replace("current-context: a", "current-context: fixed").replace(
            "contexts: [{name: a,", "contexts: [{name: fixed,"
        )
        (directory / "empty").write_text(fixed)  # repaired: no longer counted

        async def three_left() -> bool:
            s = await scrape(exporter.url)
            return value(s, catalogue.KUBECONFIG_FILES_UNUSABLE.name) == 3

        await eventually(three_left)
    for name, _, message in MALFORMED[:4]:
        lines = [r.getMessage() for r in caplog.records if str(directory / name) in r.getMessage()]
        assert len(lines) == 1, (name, lines)  # once, though the directory is rescanned
        assert message in lines[0]
        assert "\n" not in lines[0]
