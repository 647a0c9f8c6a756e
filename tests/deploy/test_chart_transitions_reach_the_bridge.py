"""With transitions enabled, the exporter and the bridge the chart configures talk for real.

The bridge runs from the rendered fluxwatch.yaml, the exporter from the StatefulSet's rendered
arguments (its in-cluster source swapped for the simulator, the Service URL for the bridge's
loopback address). Both read the token from the one mounted Secret path, so the exporter's
reports are accepted: the bridge's rollout view fills and no request is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import yaml

from exporter.app import Exporter
from fluxwatch.cli import build_parser
from fluxwatch.commands.exporter import settings_from_args
from notifiers.app import Bridge
from notifiers.config import config_from_mapping
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import SimulatorServer
from tests.deploy.podfs import container_args, in_pod, lay_out_pod
from tests.deploy.renders import find, render_example

APPS = AppMix(git=1, helm=1, oci=0, bucket=0, image=0, canary=0, notification=0)
DEADLINE = 30.0


async def test_exporter_reports_reach_the_bridge_with_the_mounted_token(tmp_path: Path) -> None:
    objects = render_example("transitions")
    document = lay_out_pod(objects, tmp_path)
    config_path = in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml")
    config = config_from_mapping(
        yaml.safe_load(config_path.read_text()), base_dir=config_path.parent
    )
    args = build_parser().parse_args(
        container_args(objects, "StatefulSet", "fluxwatch-exporter", tmp_path)
    )
    settings = settings_from_args(args)
    # One Secret, mounted at the same path in both pods.
    assert settings.bridge_token_file == str(
        in_pod(tmp_path, document["bridge"]["exporters"]["token_file"])
    )
    service = find(objects, "Service", "fluxwatch-bridge")
    target = urlsplit(settings.bridge_url)
    assert target.hostname == "fluxwatch-bridge.fluxwatch.svc"
    assert target.port == service["spec"]["ports"][0]["port"]

    scenario = Scenario(name="chart", seed=5, clusters=(ClusterSpec("prod-eu-1", apps=APPS),))
    bridge = Bridge(config, listen=("127.0.0.1", 0), console=io.StringIO())
    await bridge.start()
    try:
        async with SimulatorServer(scenario, state_dir=tmp_path / "sim", time_scale=None) as sim:
            settings = dataclasses.replace(
                settings,
                in_cluster=False,
                kubeconfig=str(sim.kubeconfig_path),
                listen="127.0.0.1:0",
                bridge_url=f"http://127.0.0.1:{bridge.port}",
            )
            async with Exporter(settings), aiohttp.ClientSession() as http:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + DEADLINE
                while True:
                    async with http.get(f"http://127.0.0.1:{bridge.port}/rollouts") as response:
                        assert response.status == 200
                        rows = (await response.json())["rollouts"]
                    if rows:
                        break
                    assert loop.time() < deadline, "the bridge never heard from the exporter"
                    await asyncio.sleep(0.05)
        refused = bridge.metrics.registry.get_sample_value(
            "fluxwatch_bridge_events_rejected_total",
            {"source": "transition", "reason": "bad_token"},
        )
        assert not refused
    finally:
        await bridge.stop()
