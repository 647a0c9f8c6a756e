"""kubernetes_asyncio lists (pages, selectors) and watches (resume, bookmarks, timeout, 410)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from simulator.scenario import preset
from simulator.server import SimulatorServer
from tests.simulator.conftest import KS, eventually, kube


async def test_list_paginates_with_continue_and_one_resource_version(sim: SimulatorServer) -> None:
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        full = await co.list_cluster_custom_object(*KS)
        names: list[str] = []
        token = None
        versions = set()
        while True:
            kwargs: dict[str, Any] = {"limit": 2}
            if token:
                kwargs["_continue"] = token
            page = await co.list_cluster_custom_object(*KS, **kwargs)
            assert page["kind"] == "KustomizationList"
            assert page["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
            names += [
                f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in page["items"]
            ]
            versions.add(page["metadata"]["resourceVersion"])
            token = page["metadata"].get("continue")
            if not token:
                break
    assert names == [f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in full["items"]]
    assert len(names) >= 3
    assert versions == {full["metadata"]["resourceVersion"]}


@pytest.mark.parametrize(
    ("selector", "expect"),
    [
        ("toolkit.fluxcd.io/tenant", lambda labels: "toolkit.fluxcd.io/tenant" in labels),
        ("!sharding.fluxcd.io/key", lambda labels: "sharding.fluxcd.io/key" not in labels),
        (
            "toolkit.fluxcd.io/tenant=payments",
            lambda lb: lb.get("toolkit.fluxcd.io/tenant") == "payments",
        ),
        (
            "toolkit.fluxcd.io/tenant in (search,checkout)",
            lambda lb: lb.get("toolkit.fluxcd.io/tenant") in ("search", "checkout"),
        ),
        (
            "toolkit.fluxcd.io/tenant notin (search),kustomize.toolkit.fluxcd.io/name",
            lambda lb: (
                lb.get("toolkit.fluxcd.io/tenant") != "search"
                and "kustomize.toolkit.fluxcd.io/name" in lb
            ),
        ),
    ],
    ids=["exists", "not-exists", "equals", "in", "notin-and-exists"],
)
async def test_label_selector_filters_like_the_apiserver(
    sim: SimulatorServer, selector: str, expect: Any
) -> None:
    every = [o for k in ("Kustomization", "HelmRelease") for o in sim.cluster("c1").objects(k)]
    wanted = sorted(o["metadata"]["name"] for o in every if expect(o["metadata"].get("labels", {})))
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        got: list[str] = []
        for group, version, plural in (KS, ("helm.toolkit.fluxcd.io", "v2", "helmreleases")):
            result = await co.list_cluster_custom_object(
                group, version, plural, label_selector=selector
            )
            got += [i["metadata"]["name"] for i in result["items"]]
    assert sorted(got) == wanted
    assert 0 < len(wanted) < len(every)


async def test_namespaced_list_and_get(sim: SimulatorServer) -> None:
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        listed = await co.list_namespaced_custom_object(*KS[:2], "flux-system", KS[2])
        assert {i["metadata"]["name"] for i in listed["items"]} == {"flux-system", "infra"}
        one = await co.get_namespaced_custom_object(*KS[:2], "flux-system", KS[2], "infra")
        assert one["spec"]["dependsOn"] == [{"name": "flux-system"}]
        with pytest.raises(ApiException) as missing:
            await co.get_namespaced_custom_object(*KS[:2], "flux-system", KS[2], "nope")
    assert missing.value.status == 404


async def test_watch_resumes_from_resource_version(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        listed = await co.list_cluster_custom_object(*KS)
        since = listed["metadata"]["resourceVersion"]
        c1.suspend("Kustomization", "flux-system", "infra")
        c1.resume("Kustomization", "flux-system", "infra")
        events = []
        async with watch.Watch() as w:
            async for event in w.stream(
                co.list_cluster_custom_object, *KS, resource_version=since, timeout_seconds=1
            ):
                events.append((event["type"], event["raw_object"]["metadata"]["name"]))
    assert events[:2] == [("MODIFIED", "infra"), ("MODIFIED", "infra")]


async def test_watch_without_version_starts_with_added_state(sim: SimulatorServer) -> None:
    async with kube(sim, "c2") as api:
        co = client.CustomObjectsApi(api)
        seen = []
        async with watch.Watch() as w:
            async for event in w.stream(co.list_cluster_custom_object, *KS, timeout_seconds=1):
                seen.append(event["type"])
    assert seen == ["ADDED"] * len(sim.cluster("c2").objects("Kustomization"))


async def test_watch_streams_live_changes_and_bookmarks(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        since = str(c1.resource_version)
        types: list[str] = []
        bookmark_versions: list[int] = []
        watching = c1.watcher_count()

        async def drive() -> None:
            # Changes are made once the server has registered the watch, not after a sleep.
            await eventually(lambda: c1.watcher_count() > watching)
            await sim.advance(900)

        driver = asyncio.create_task(drive())
        async with watch.Watch() as w:
            async for event in w.stream(
                co.list_cluster_custom_object,
                *KS,
                resource_version=since,
                allow_watch_bookmarks=True,
                timeout_seconds=60,  # a safety net only: the loop ends on what it receives
            ):
                types.append(event["type"])
                if event["type"] == "BOOKMARK":
                    version = int(event["raw_object"]["metadata"]["resourceVersion"])
                    bookmark_versions.append(version)
                    if driver.done() and version == c1.resource_version:
                        break  # a bookmark after every change: the stream is caught up
        await driver
    assert "MODIFIED" in types
    assert bookmark_versions[-1] == c1.resource_version


async def test_server_ends_watch_at_timeout_seconds(sim: SimulatorServer) -> None:
    """The watch asking for timeoutSeconds ends cleanly by itself; one opened before it without
    a timeout is still open afterwards and still streams, so the timeout ended it."""
    c1 = sim.cluster("c1")
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        since = str(c1.resource_version)
        untimed_events: list[str] = []
        before = c1.watcher_count()

        async def untimed() -> None:
            async with watch.Watch() as w:
                async for event in w.stream(
                    co.list_cluster_custom_object, *KS, resource_version=since
                ):
                    untimed_events.append(event["type"])

        open_watch = asyncio.create_task(untimed())
        await eventually(lambda: c1.watcher_count() == before + 1)
        timed_events: list[str] = []
        async with watch.Watch() as w:
            async for event in w.stream(
                co.list_cluster_custom_object, *KS, resource_version=since, timeout_seconds=1
            ):
                timed_events.append(event["type"])  # nothing changes: none expected
        assert timed_events == []
        await eventually(lambda: c1.watcher_count() == before + 1)  # the timed one is gone
        assert not open_watch.done()
        await sim.advance(900)
        await eventually(lambda: "MODIFIED" in untimed_events)
        open_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await open_watch


async def test_watch_from_compacted_version_gets_410(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    old = c1.resource_version
    c1.suspend("Kustomization", "flux-system", "infra")
    c1.compact_history()
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        async with watch.Watch() as w:
            stream = w.stream(
                co.list_cluster_custom_object, *KS, resource_version=str(old), timeout_seconds=1
            )
            with pytest.raises(ApiException) as gone:
                await stream.next()
    assert gone.value.status == 410
    assert "too old resource version" in str(gone.value.reason)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"namespace": "flux-system"}, {"flux-system", "infra"}),
        ({"label_selector": "toolkit.fluxcd.io/tenant=payments"}, {"podinfo"}),
        ({"field_selector": "metadata.name=infra"}, {"infra"}),
    ],
    ids=["namespace", "label-selector", "field-selector"],
)
async def test_watch_sees_only_its_scope(
    sim: SimulatorServer, scope: dict[str, str], expected: set[str]
) -> None:
    c1 = sim.cluster("c1")
    since = str(c1.resource_version)
    for obj in c1.objects("Kustomization"):
        c1.reconcile("Kustomization", obj["metadata"]["namespace"], obj["metadata"]["name"])
    async with kube(sim, "c1") as api:
        co = client.CustomObjectsApi(api)
        names = set()
        async with watch.Watch() as w:
            if "namespace" in scope:
                stream = w.stream(
                    co.list_namespaced_custom_object,
                    KS[0],
                    KS[1],
                    scope["namespace"],
                    KS[2],
                    resource_version=since,
                    timeout_seconds=1,
                )
            else:
                stream = w.stream(
                    co.list_cluster_custom_object,
                    *KS,
                    resource_version=since,
                    timeout_seconds=1,
                    **scope,
                )
            async for event in stream:
                names.add(event["raw_object"]["metadata"]["name"])
    assert names == expected


async def test_watch_history_retention_is_configurable(tmp_path: Path) -> None:
    async with SimulatorServer(preset("small", seed=1), state_dir=tmp_path, watch_history=5) as sim:
        c1 = sim.cluster("c1")
        start = c1.resource_version
        for _ in range(4):
            c1.reconcile("Kustomization", "flux-system", "infra")  # one event each
        async with kube(sim, "c1") as api:
            co = client.CustomObjectsApi(api)
            async with watch.Watch() as w:
                kept = [
                    e["type"]
                    async for e in w.stream(
                        co.list_cluster_custom_object,
                        *KS,
                        resource_version=str(start),
                        timeout_seconds=1,
                    )
                ]
            assert kept == ["MODIFIED"] * 4
            for _ in range(6):
                c1.reconcile("Kustomization", "flux-system", "infra")
            async with watch.Watch() as w:
                stream = w.stream(
                    co.list_cluster_custom_object,
                    *KS,
                    resource_version=str(start),
                    timeout_seconds=1,
                )
                with pytest.raises(ApiException) as gone:
                    await stream.next()
    assert gone.value.status == 410
