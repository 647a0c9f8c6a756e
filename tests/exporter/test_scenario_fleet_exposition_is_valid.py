"""Scenario: the exposition of a real simulated fleet (every kind, an old-Flux cluster, a cluster
without image automation, compat output on) passes promtool and both parsers."""

from __future__ import annotations

import asyncio
from asyncio.subprocess import PIPE
from pathlib import Path

from simulator.scenario import preset
from tests.exporter.scrape import samples, series, value
from tests.exporter.simfleet import running

OM = "application/openmetrics-text;version=1.0.0"


async def test_promtool_and_parsers_accept_a_live_fleet(tmp_path: Path, promtool: str) -> None:
    async with running(tmp_path, scenario=preset("small"), compat=True) as run:
        await run.sim.advance(600)  # faults, commits and retries under way
        async with run.http.get(f"{run.exporter.url}/metrics") as resp:
            text = await resp.read()
        async with run.http.get(f"{run.exporter.url}/metrics", headers={"Accept": OM}) as resp:
            om = (await resp.read()).decode()
    proc = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(text), 60)
    assert proc.returncode == 0, out.decode() + err.decode()
    assert out.strip() == b""
    assert err.strip() == b""
    data = samples(text.decode())
    samples(om, openmetrics=True)
    # every cluster, the old Flux one with its beta versions, no image kinds where not served
    served = series(data, "flux_cluster_kind_served_info", cluster="c3-legacy", kind="HelmRelease")
    assert served[0]["api_version"] == "helm.toolkit.fluxcd.io/v2beta2"
    assert not series(data, "flux_resource_status", cluster="c2", kind="ImagePolicy")
    assert series(data, "flux_resource_status", cluster="c1", kind="ImagePolicy")
    assert series(data, "gotk_resource_info", cluster="c3-legacy", customresource_version="v2beta2")
    total = sum(v for (n, _), v in data.items() if n == "flux_cluster_resources")
    assert total == value(data, "fluxwatch_exporter_objects")
