"""The starter configuration a new user begins with: it loads, starts and matches the docs."""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
from pathlib import Path

import aiohttp
import pytest

from fluxwatch.cli import main
from fluxwatch.config import load_config
from simulator.scenario import preset
from simulator.server import SimulatorServer
from tests.cli.process import DEADLINE_SECONDS, REPO_ROOT, Fluxwatch

STARTER = REPO_ROOT / "examples" / "fluxwatch.yaml"
EVENT = REPO_ROOT / "examples" / "flux-event.json"
BRIDGE_DOC = REPO_ROOT / "docs" / "bridge.md"


def _documented_run(command: str) -> list[str]:
    """The output lines docs/bridge.md shows under ``$ <command>``."""
    text = BRIDGE_DOC.read_text()
    match = re.search(r"```console\n\$ " + re.escape(command) + r"\n(.*?)```", text, re.S)
    assert match is not None, f"docs/bridge.md shows no run of: {command}"
    return match.group(1).splitlines()


def _on_free_ports(tmp_path: Path) -> Path:
    """The starter as a user saves it, moved to ports no other test or program holds."""
    text = STARTER.read_text()
    assert "127.0.0.1:9797" in text
    assert "127.0.0.1:9095" in text
    copy = tmp_path / "fluxwatch.yaml"
    copy.write_text(text.replace(":9797", ":0").replace(":9095", ":0"))
    return copy


def test_config_example_prints_the_checked_in_starter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "example"]) == 0
    assert capsys.readouterr().out == STARTER.read_text()


def test_starter_loads_with_loopback_addresses_and_a_local_state_dir() -> None:
    config = load_config(STARTER)
    assert config.exporter.listen == "127.0.0.1:9797"
    assert config.exporter.watch.inactivity_timeout_seconds == 90.0  # written 90s
    assert config.bridge is not None
    assert (config.bridge.listen_host, config.bridge.listen_port) == ("127.0.0.1", 9095)
    assert config.bridge.state_dir == STARTER.parent / "fluxwatch-state"
    assert sorted(config.bridge.destinations) == ["console"]
    assert config.bridge.route.group_interval == 300.0  # written 5m


def test_routes_test_output_in_the_docs_is_what_the_starter_gives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = (
        "fluxwatch bridge routes test --config examples/fluxwatch.yaml "
        "--event examples/flux-event.json --cluster dev-1"
    )
    documented = _documented_run(command)
    argv = [str(REPO_ROOT / a) if a.startswith("examples/") else a for a in shlex.split(command)]
    assert main(argv[1:]) == 0
    assert capsys.readouterr().out.splitlines() == documented


async def test_bridge_start_output_in_the_docs_is_what_the_starter_gives(tmp_path: Path) -> None:
    documented = _documented_run("fluxwatch bridge --config examples/fluxwatch.yaml")
    process = await Fluxwatch.start("bridge", "--config", str(_on_free_ports(tmp_path)))
    try:
        match = await process.wait_for_line(r"^fluxwatch bridge listening on 127\.0\.0\.1:(\d+)$")
        port = match.group(1)
        await process.wait_for_line(r"^  Flux events: ")
        process.proc.send_signal(signal.SIGTERM)
        assert await process.finish() == 0, process.stderr
    finally:
        await process.kill()
    assert process.stdout[:2] == [line.replace("9095", port) for line in documented]
    assert (tmp_path / "fluxwatch-state" / "outbox.sqlite3").is_file()  # beside the file


async def test_fluxwatch_run_with_the_starter_watches_and_takes_events(tmp_path: Path) -> None:
    """The README's path: the starter as is (but on free ports), the current kube context."""
    config = _on_free_ports(tmp_path)
    async with SimulatorServer(preset("small"), state_dir=tmp_path / "sim") as sim:
        process = await Fluxwatch.start(
            "run", "--config", str(config), env={"KUBECONFIG": str(sim.kubeconfig_path)}
        )
        try:
            exporter = (await process.wait_for_line(r"^exporter: (http://\S+)/metrics")).group(1)
            bridge = (await process.wait_for_line(r"^bridge: Flux events at (http://\S+)/flux/"))[1]
            async with aiohttp.ClientSession() as session:
                async with asyncio.timeout(DEADLINE_SECONDS):
                    while True:
                        async with session.get(f"{exporter}/readyz") as response:
                            if response.status == 200:
                                break
                        await asyncio.sleep(0.05)
                async with session.post(f"{bridge}/flux/c1", data=EVENT.read_bytes()) as response:
                    assert response.status == 202
                async with session.get(f"{exporter}/metrics") as response:
                    assert 'cluster="c1"' in await response.text()
            process.proc.send_signal(signal.SIGTERM)
            assert await process.finish() == 0, process.stderr
        finally:
            await process.kill()
    assert (tmp_path / "fluxwatch-state" / "outbox.sqlite3").is_file()


def test_config_check_summarises_a_good_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(STARTER)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{STARTER}: ok",
        "  exporter: listens on 127.0.0.1:9797",
        f"  bridge: listens on 127.0.0.1:9095, state in {STARTER.parent / 'fluxwatch-state'}, "
        "1 destination(s): console",
    ]
