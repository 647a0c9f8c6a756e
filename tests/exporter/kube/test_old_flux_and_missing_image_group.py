"""A cluster on an old Flux is watched at its versions; one without image automation works."""

from __future__ import annotations

from exporter.app import Exporter
from exporter.kinds import KINDS
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, object_keys, scrape, series, settings_for

IMAGE_KINDS = {"ImageRepository", "ImagePolicy", "ImageUpdateAutomation"}


async def test_each_cluster_is_watched_at_the_versions_it_serves(sim: SimulatorServer) -> None:
    async with Exporter(settings_for(sim)) as exporter:
        await eventually(exporter.ready)
        samples = await scrape(exporter.url)
    served = {
        (s["cluster"], s["kind"]): s["api_version"]
        for s in series(samples, "flux_cluster_kind_served_info")
    }
    assert served[("c1", "Kustomization")] == "kustomize.toolkit.fluxcd.io/v1"
    assert served[("c1", "HelmRelease")] == "helm.toolkit.fluxcd.io/v2"
    assert served[("c3-legacy", "Kustomization")] == "kustomize.toolkit.fluxcd.io/v1beta2"
    assert served[("c3-legacy", "HelmRelease")] == "helm.toolkit.fluxcd.io/v2beta2"
    assert served[("c3-legacy", "GitRepository")] == "source.toolkit.fluxcd.io/v1beta2"
    assert not {kind for cluster, kind in served if cluster == "c2"} & IMAGE_KINDS
    assert {kind for cluster, kind in served if cluster == "c1"} >= IMAGE_KINDS

    for cluster in ("c1", "c2", "c3-legacy"):
        kinds = [k.kind for k in KINDS if (cluster, k.kind) in served]
        exposed = {
            (s["kind"], s["namespace"], s["name"])
            for s in series(samples, "flux_resource_status", cluster=cluster)
        }
        assert exposed == object_keys(sim, cluster, kinds), cluster
        info = series(samples, "flux_resource_info", cluster=cluster, kind="HelmRelease")
        assert {s["api_version"] for s in info} == {served[(cluster, "HelmRelease")]}
