"""Exec-plugin credentials work as kubectl's do, and a 401 makes the plugin run again."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from catalogue import exporter as catalogue
from exporter.app import Exporter
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, settings_for

PLUGIN = """\
import json, pathlib, sys
token = pathlib.Path(sys.argv[1]).read_text().strip()
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {"token": token},
}))
"""


def _exec_kubeconfig(sim: SimulatorServer, tmp_path: Path, token_file: Path) -> Path:
    doc = yaml.safe_load(sim.kubeconfig_path.read_text())
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    for user in doc["users"]:
        user["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(plugin), str(token_file)],
                "interactiveMode": "Never",
            }
        }
    path = tmp_path / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def _synced(exporter: Exporter) -> bool:
    state = exporter.store.clusters["c1"].state
    return state is not None and state.synced


async def test_exec_plugin_token_is_renewed_after_401(sim: SimulatorServer, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("expired-token")
    kubeconfig = _exec_kubeconfig(sim, tmp_path, token_file)
    settings = settings_for(sim, kubeconfig=str(kubeconfig), contexts=("c1",))
    async with Exporter(settings) as exporter:
        registry = exporter.health.registry
        await eventually(
            lambda: (
                (
                    registry.get_sample_value(
                        catalogue.API_ERRORS.name, {"cluster": "c1", "code": "401"}
                    )
                    or 0
                )
                >= 1
            )
        )
        before = exporter.store.clusters["c1"].state
        assert before is not None
        assert not before.synced
        assert "401" in before.error
        assert before.auth_failed
        token_file.write_text(sim.cluster("c1").token)  # the identity provider issues a new one
        await eventually(lambda: _synced(exporter))
        state = exporter.store.clusters["c1"].state
        assert state is not None
        assert state.reachable
        assert state.synced
        assert not state.auth_failed  # accepted again: no longer reported as rejected
