"""Per-cluster tokens (401), discovery per Flux profile, two clusters from one kubeconfig,
outages (refused and 503) and recovery, and the raw ``watch=`` spellings."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from simulator.server import SimulatorServer
from tests.simulator.conftest import KS, eventually, kube


def tls_context(sim: SimulatorServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sim.ca_path))


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ("c2-token", 401), ("own-token", 200)],
    ids=["no-token", "wrong-token", "other-clusters-token", "own-token"],
)
async def test_bearer_token_is_per_cluster(
    sim: SimulatorServer, headers: dict[str, str] | str, status: int
) -> None:
    if headers == "c2-token":
        headers = {"Authorization": f"Bearer {sim.cluster('c2').token}"}
    elif headers == "own-token":
        headers = {"Authorization": f"Bearer {sim.cluster('c1').token}"}
    assert isinstance(headers, dict)
    url = f"{sim.base_url}/clusters/c1/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=tls_context(sim)) as response,
    ):
        body = await response.json()
    assert response.status == status
    if status == 401:
        assert body == {
            "apiVersion": "v1",
            "code": 401,
            "kind": "Status",
            "message": "Unauthorized",
            "metadata": {},
            "reason": "Unauthorized",
            "status": "Failure",
        }


@pytest.mark.parametrize("value", ["true", "True", "1"])
async def test_watch_flag_spellings(sim: SimulatorServer, value: str) -> None:
    c1 = sim.cluster("c1")
    url = (
        f"{c1.server_url}/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"
        f"?watch={value}&timeoutSeconds=1"
    )
    headers = {"Authorization": f"Bearer {c1.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=tls_context(sim)) as response,
    ):
        lines = (await response.read()).decode().splitlines()
    assert lines
    assert all('"type":"ADDED"' in line for line in lines)


@pytest.mark.parametrize(
    ("context", "groups"),
    [
        (
            "c1",
            {
                "source.toolkit.fluxcd.io": "v1",
                "kustomize.toolkit.fluxcd.io": "v1",
                "helm.toolkit.fluxcd.io": "v2",
                "image.toolkit.fluxcd.io": "v1",
                "notification.toolkit.fluxcd.io": "v1beta3",
                "flagger.app": "v1beta1",
            },
        ),
        (
            "c2",
            {
                "source.toolkit.fluxcd.io": "v1",
                "kustomize.toolkit.fluxcd.io": "v1",
                "helm.toolkit.fluxcd.io": "v2",
                "notification.toolkit.fluxcd.io": "v1beta3",
                "flagger.app": "v1beta1",
            },
        ),
        (
            "c3-legacy",
            {
                "source.toolkit.fluxcd.io": "v1beta2",
                "kustomize.toolkit.fluxcd.io": "v1beta2",
                "helm.toolkit.fluxcd.io": "v2beta2",
                "image.toolkit.fluxcd.io": "v1beta2",
                "notification.toolkit.fluxcd.io": "v1beta3",
                "flagger.app": "v1beta1",
            },
        ),
    ],
    ids=["current", "without-image-automation", "old-flux"],
)
async def test_discovery_matches_the_clusters_flux(
    sim: SimulatorServer, context: str, groups: dict[str, str]
) -> None:
    async with kube(sim, context) as api:
        version = await client.VersionApi(api).get_code()
        assert version.major == "1"
        listed = await client.ApisApi(api).get_api_versions()
        assert {g.name: g.preferred_version.version for g in listed.groups} == groups
        custom = client.CustomObjectsApi(api)
        kustomize = groups["kustomize.toolkit.fluxcd.io"]
        resources = await custom.get_api_resources("kustomize.toolkit.fluxcd.io", kustomize)
        ks = next(r for r in resources.resources if r.name == "kustomizations")
        assert (ks.kind, ks.namespaced) == ("Kustomization", True)
        assert {"get", "list", "watch"} <= set(ks.verbs)
        listed_ks = await custom.list_cluster_custom_object(
            "kustomize.toolkit.fluxcd.io", kustomize, "kustomizations"
        )
        assert {i["apiVersion"] for i in listed_ks["items"]} == {
            f"kustomize.toolkit.fluxcd.io/{kustomize}"
        }
        if "image.toolkit.fluxcd.io" not in groups:
            with pytest.raises(ApiException) as missing:
                await custom.list_cluster_custom_object(
                    "image.toolkit.fluxcd.io", "v1", "imagepolicies"
                )
            assert missing.value.status == 404


async def test_two_clusters_from_one_kubeconfig(sim: SimulatorServer) -> None:
    uids = {}
    for context in ("c1", "c2"):
        async with kube(sim, context) as api:
            result = await client.CustomObjectsApi(api).list_cluster_custom_object(*KS)
            uids[context] = {i["metadata"]["uid"] for i in result["items"]}
    assert uids["c1"]
    assert uids["c2"]
    assert not uids["c1"] & uids["c2"]
    assert sim.kubeconfig_path.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("mode", "status"), [("unavailable", 503), ("refuse", None)], ids=["503", "refused"]
)
async def test_outage_then_recovery(sim: SimulatorServer, mode: str, status: int | None) -> None:
    c1 = sim.cluster("c1")
    async with kube(sim, "c1") as api:
        custom = client.CustomObjectsApi(api)
        c1.set_outage(mode)  # type: ignore[arg-type]
        if status is not None:
            with pytest.raises(ApiException) as down:
                await custom.list_cluster_custom_object(*KS)
            assert down.value.status == status
        else:
            with pytest.raises(aiohttp.ClientError):
                await custom.list_cluster_custom_object(*KS)
        # Other clusters are unaffected.
        async with kube(sim, "c2") as other:
            assert (await client.CustomObjectsApi(other).list_cluster_custom_object(*KS))["items"]
        c1.set_outage(None)
        assert (await custom.list_cluster_custom_object(*KS))["items"]


async def test_outage_ends_open_watches(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    url = f"{c1.server_url}/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations?watch=1"
    headers = {"Authorization": f"Bearer {c1.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=tls_context(sim)) as response,
    ):
        await response.content.readline()
        await eventually(lambda: c1.watcher_count() == 1)
        c1.set_outage("unavailable")
        rest = await response.content.read()
    assert rest.count(b"\n") == len(c1.objects("Kustomization")) - 1
    await eventually(lambda: c1.watcher_count() == 0)


async def test_streaming_list_ends_initial_events_with_a_bookmark(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    url = (
        f"{c1.server_url}/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations?watch=1"
        "&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
        "&timeoutSeconds=1"
    )
    headers = {"Authorization": f"Bearer {c1.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=tls_context(sim)) as response,
    ):
        lines = (await response.read()).splitlines()
    count = len(c1.objects("Kustomization"))
    assert all(b'"type":"ADDED"' in line for line in lines[:count])
    assert b'"k8s.io/initial-events-end":"true"' in lines[count]
    assert f'"resourceVersion":"{c1.resource_version}"'.encode() in lines[count]
