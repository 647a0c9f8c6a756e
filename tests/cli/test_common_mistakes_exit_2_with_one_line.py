"""A port in use or an unwritable state directory: one line, exit status 2, nothing left running.

The commands run in this process (``fluxwatch.cli.main``), so the test can see what a failed
start would leave behind: the bridge's writer thread, tasks, sockets.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from fluxwatch.cli import main

IN_USE = "address already in use (is another fluxwatch or another program running there?)"


@pytest.fixture
def config(tmp_path: Path, unreachable_kubeconfig: Path) -> Path:
    kubeconfig = unreachable_kubeconfig
    path = tmp_path / "fluxwatch.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "exporter": {"kubeconfig": str(kubeconfig), "listen": "127.0.0.1:0"},
                "bridge": {
                    "listen": "127.0.0.1:0",
                    "state_dir": str(tmp_path / "state"),
                    "destinations": {"console": {"type": "console"}},
                    "route": {"destinations": ["console"]},
                },
            }
        )
    )
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    before = set(threading.enumerate())
    code = main(["--log-level", "error", *argv])
    leftover = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == [], f"threads left running: {leftover}"
    return code, capsys.readouterr().err.splitlines()


def _rewrite(config: Path, section: str, key: str, value: str) -> None:
    document = yaml.safe_load(config.read_text())
    document[section][key] = value
    config.write_text(yaml.safe_dump(document))


def test_bridge_port_in_use(
    config: Path, occupied_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        ["bridge", "--config", str(config), "--listen", f"127.0.0.1:{occupied_port}"], capsys
    )
    assert (code, err) == (
        2,
        [f"fluxwatch bridge: bridge: cannot listen on 127.0.0.1:{occupied_port}: {IN_USE}"],
    )


def test_bridge_state_dir_that_cannot_be_created(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state = blocker / "state"  # a directory under a regular file: no one can create it
    code, err = _run(["bridge", "--config", str(config), "--state-dir", str(state)], capsys)
    assert (code, err) == (
        2,
        [f"fluxwatch bridge: bridge: cannot use state directory {state}: not a directory"],
    )


def test_exporter_port_in_use(
    config: Path, occupied_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        ["exporter", "--config", str(config), "--listen", f"127.0.0.1:{occupied_port}"], capsys
    )
    assert (code, err) == (
        2,
        [f"fluxwatch exporter: exporter: cannot listen on 127.0.0.1:{occupied_port}: {IN_USE}"],
    )


@pytest.mark.parametrize("part", ["exporter", "bridge"])
def test_run_port_in_use(
    config: Path, occupied_port: int, part: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _rewrite(config, part, "listen", f"127.0.0.1:{occupied_port}")
    code, err = _run(["run", "--config", str(config)], capsys)
    assert (code, err) == (
        2,
        [f"fluxwatch run: {part}: cannot listen on 127.0.0.1:{occupied_port}: {IN_USE}"],
    )


def test_run_state_dir_that_cannot_be_created(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = _run(["run", "--config", str(config), "--state-dir", str(blocker)], capsys)
    assert code == 2
    assert err == [
        f"fluxwatch run: bridge: cannot use state directory {blocker}: it exists and is not a "
        "directory"
    ]


def test_misspelled_section_stops_every_command(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`brige:` is refused by every command that reads the file, with the same line."""
    config.write_text(config.read_text().replace("bridge:", "brige:"))
    assert config.read_text().startswith("brige:")  # safe_dump sorts the sections
    messages = set()
    for argv in (
        ["bridge", "--config", str(config)],
        ["run", "--config", str(config)],
        ["exporter", "--config", str(config)],
        ["outbox", "list", "--config", str(config)],
        ["bridge", "routes", "test", "--config", str(config), "--event", str(config)],
        ["config", "check", str(config)],
    ):
        code, err = _run(argv, capsys)
        assert code == 2, argv
        assert len(err) == 1, err
        command = argv[0]
        assert err[0].startswith(f"fluxwatch {command}: {config}:"), err
        messages.add(err[0].removeprefix(f"fluxwatch {command}: "))
    assert len(messages) == 1, messages  # the same wording, whichever command read the file
    assert messages == {f"{config}:1:1: brige: unknown key (expected one of: exporter, bridge)"}
