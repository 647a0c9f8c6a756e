"""A server that fails to start (port in use, unusable state directory) stops what it started.

The exporter, the bridge and the simulator start through ``plumbing.http_server.HttpServer``:
each case below makes the start fail and checks the error's one line; the suite-wide leak check
(tests/conftest.py) then fails the test if a task, the bridge's writer thread or an HTTP session
outlived the failed start.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from exporter.app import Exporter
from exporter.settings import ExporterSettings
from notifiers.app import Bridge, StateDirError
from notifiers.config import config_from_mapping
from plumbing.http_server import HttpServer, ListenError, format_address
from simulator.scenario import preset
from simulator.server import SimulatorServer

IN_USE = "address already in use"


def _bridge(tmp_path: Path, port: int, state_dir: Path | None = None) -> Bridge:
    config = config_from_mapping(
        {
            "bridge": {
                "listen": f"127.0.0.1:{port}",
                "state_dir": str(state_dir or tmp_path / "state"),
                "destinations": {"console": {"type": "console"}},
                "route": {"destinations": ["console"]},
            }
        }
    )
    return Bridge(config)


async def test_bridge_port_in_use(tmp_path: Path, occupied_port: int) -> None:
    bridge = _bridge(tmp_path, occupied_port)
    with pytest.raises(ListenError) as info:
        await bridge.start()
    assert str(info.value) == (
        f"bridge: cannot listen on 127.0.0.1:{occupied_port}: {IN_USE} "
        "(is another fluxwatch or another program running there?)"
    )
    assert not bridge.outbox.alive  # the writer thread was started, and is stopped again


async def test_bridge_state_dir_unusable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bridge = _bridge(tmp_path, 0, state_dir=blocker / "state")
    with pytest.raises(StateDirError, match=r"cannot use state directory .*: not a directory"):
        await bridge.start()
    with pytest.raises(RuntimeError):
        _ = bridge.url  # never served


async def test_exporter_port_in_use(unreachable_kubeconfig: Path, occupied_port: int) -> None:
    settings = ExporterSettings(
        kubeconfig=str(unreachable_kubeconfig), listen=f"127.0.0.1:{occupied_port}"
    )
    with pytest.raises(ListenError, match=f"^exporter: cannot listen on .*:{occupied_port}: "):
        async with Exporter(settings):
            pytest.fail("started on a port in use")


async def test_simulator_port_in_use(tmp_path: Path, occupied_port: int) -> None:
    sim = SimulatorServer(preset("small"), port=occupied_port, state_dir=tmp_path)
    with pytest.raises(ListenError, match=f"^simulator: cannot listen on .*:{occupied_port}: "):
        async with sim:
            pytest.fail("started on a port in use")


async def test_port_0_reports_the_port_actually_bound(caplog: pytest.LogCaptureFixture) -> None:
    server = HttpServer(web.Application(), "127.0.0.1", 0, name="probe")
    caplog.set_level("INFO", logger="fluxwatch.http")
    await server.start()
    try:
        assert server.port != 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert caplog.messages == [
            f"probe listening on 127.0.0.1:{server.port} (http://127.0.0.1:{server.port})"
        ]
    finally:
        await server.stop()
    assert not server.running


@pytest.mark.parametrize(
    ("host", "port", "shown", "url"),
    [
        ("127.0.0.1", 9095, "127.0.0.1:9095", "http://127.0.0.1:9095"),
        ("0.0.0.0", 9797, "0.0.0.0:9797", "http://127.0.0.1:9797"),
        ("::", 9797, "[::]:9797", "http://[::1]:9797"),
        ("::1", 8443, "[::1]:8443", "http://[::1]:8443"),
    ],
)
def test_addresses_are_written_for_people_and_clients(
    host: str, port: int, shown: str, url: str
) -> None:
    assert format_address(host, port) == shown
    assert HttpServer(web.Application(), host, port, name="x").url == url
