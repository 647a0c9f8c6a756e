"""The namespaced RBAC variant is enough: the exporter syncs through an RBAC-enforcing front.

The chart's tenant Role (rendered by Helm) is enforced in front of the simulator for the
exporter's service account; the exporter runs with the namespace the chart configures, syncs,
serves that namespace's objects only, and never makes a request the Role forbids.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import aiohttp
import pytest
import yaml

from exporter.app import Exporter
from exporter.settings import settings_from_mapping
from simulator.scenario import AppMix, ClusterSpec, Scenario
from simulator.server import SimulatorServer
from tests.deploy.rbacproxy import Grant, RbacProxy, authorize, grants_of
from tests.deploy.renders import find, render_chart
from tests.exporter.scrape import samples

APPS = AppMix(git=2, helm=2, oci=1, bucket=0, image=1, canary=1, notification=1)
DEADLINE = 30.0
FLUX = frozenset({"kustomize.toolkit.fluxcd.io"})
TENANT = [Grant("team-a", FLUX, frozenset({"kustomizations"}), frozenset({"get", "list", "watch"}))]


@pytest.mark.parametrize(
    ("method", "path", "query", "allowed"),
    [
        ("GET", "/apis", {}, True),
        ("GET", "/apis/kustomize.toolkit.fluxcd.io/v1", {}, True),
        ("GET", "/api/v1", {}, True),
        ("GET", "/version", {}, True),
        ("GET", "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations", {}, True),
        (
            "GET",
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations",
            {"watch": "true"},
            True,
        ),
        (
            "GET",
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations/app",
            {},
            True,
        ),
        # cluster-wide list, another namespace, another kind, core objects, a write
        ("GET", "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations", {}, False),
        ("GET", "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-b/kustomizations", {}, False),
        ("GET", "/apis/helm.toolkit.fluxcd.io/v2/namespaces/team-a/helmreleases", {}, False),
        ("GET", "/api/v1/namespaces/team-a/secrets", {}, False),
        (
            "POST",
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/team-a/kustomizations",
            {},
            False,
        ),
    ],
)
def test_authorizer_decides_as_the_api_server(
    method: str, path: str, query: dict[str, str], allowed: bool
) -> None:
    assert authorize(method, path, query, TENANT) is allowed


async def _tenant_namespace(sim: SimulatorServer) -> str:
    handle = sim.cluster(sim.cluster_names[0])
    counts: dict[str, int] = {}
    for kind in ("Kustomization", "HelmRelease", "GitRepository"):
        for obj in handle.objects(kind):
            namespace = obj["metadata"]["namespace"]
            counts[namespace] = counts.get(namespace, 0) + 1
    others = sorted(n for n in counts if n != "flux-system")
    assert others, "the scenario has no team namespace"
    return others[0]


async def test_exporter_syncs_with_the_tenant_role_only(tmp_path: Path) -> None:
    scenario = Scenario(name="tenant", seed=11, clusters=(ClusterSpec("shared-prod", apps=APPS),))
    async with SimulatorServer(scenario, state_dir=tmp_path / "sim", time_scale=None) as sim:
        namespace = await _tenant_namespace(sim)
        objects = render_chart(
            {
                "rbac": {"scope": "namespace"},
                "exporter": {"clusterName": "shared-prod", "watchNamespace": namespace},
                "bridge": {"enabled": False},
            }
        )
        grants = grants_of(objects)
        assert {g.namespace for g in grants} == {namespace}
        # The exporter: section exactly as the chart configures it, with the in-cluster
        # service account swapped for a kubeconfig that reaches the simulator through the front.
        section = yaml.safe_load(
            find(objects, "ConfigMap", "fluxwatch-config")["data"]["fluxwatch.yaml"]
        )
        settings = settings_from_mapping(section["exporter"], "exporter")
        assert settings.namespace == namespace
        async with RbacProxy(sim.base_url, sim.ca_path, grants) as proxy:
            settings = dataclasses.replace(
                settings,
                in_cluster=False,
                kubeconfig=str(proxy.kubeconfig(sim.kubeconfig_path, tmp_path / "kubeconfig")),
                listen="127.0.0.1:0",
                per_object="all",
            )
            async with Exporter(settings) as exporter, aiohttp.ClientSession() as http:
                deadline = asyncio.get_running_loop().time() + DEADLINE
                while True:
                    async with http.get(f"{exporter.url}/metrics") as response:
                        data = samples(await response.text())
                    synced = [v for (n, _), v in data.items() if n == "flux_cluster_synced"]
                    if synced == [1.0]:
                        break
                    assert asyncio.get_running_loop().time() < deadline, "never synced"
                    await asyncio.sleep(0.05)
            assert proxy.denied == []
            served = {
                dict(labels)["namespace"]
                for (name, labels), _ in data.items()
                if name == "flux_resource_info"
            }
            assert served == {namespace}
            assert any(f"/namespaces/{namespace}/" in line for line in proxy.allowed)
