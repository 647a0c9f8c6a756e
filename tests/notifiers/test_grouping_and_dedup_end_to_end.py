"""A 300-cluster burst becomes one notification; root-cause grouping; dedup end to end over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from exporter.transitions import RootCause, Transition
from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    drained,
    eventually,
    fast_webhook,
    flux_event,
    make_bridge,
    metric,
)

pytestmark = pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL


async def test_300_cluster_burst_is_one_notification(
    tmp_path: Path, destination: FakeDestination, client: aiohttp.ClientSession
) -> None:
    route = {
        "destinations": ["ci"],
        "group_by": ["kind", "namespace", "name", "revision", "status"],
        "group_wait": "1s",
    }
    bridge = make_bridge(bridge_config(tmp_path, {"ci": fast_webhook(destination.url)}, route))
    await bridge.start()
    try:
        body = json.dumps(flux_event(message="bad commit")).encode()

        async def post(i: int) -> int:
            async with client.post(
                f"http://127.0.0.1:{bridge.port}/flux/cluster-{i:03d}", data=body
            ) as r:
                return r.status

        statuses = await asyncio.gather(*(post(i) for i in range(300)))
        assert set(statuses) == {202}
        await eventually(lambda: len(destination.applied) == 1)
        await drained(bridge, "ci")  # nothing else can trickle in
        assert len(destination.requests) == 1
        data = destination.requests[0].json["data"]
        assert data["summary"]["count"] == 300
        assert len(data["summary"]["clusters"]) == 300
        assert len(data["events"]) == 100  # listed up to max_events_per_notification
    finally:
        await bridge.stop()


async def test_root_cause_groups_source_and_20_dependents(
    tmp_path: Path, destination: FakeDestination
) -> None:
    # default group_by: root_cause, status; the wait covers storing 21 events on a busy machine
    route = {"destinations": ["ci"], "group_wait": "1s"}
    bridge = make_bridge(bridge_config(tmp_path, {"ci": fast_webhook(destination.url)}, route))
    await bridge.start(serve=False)
    rc = RootCause("GitRepository", "flux-system", "repo", "GitOperationFailed")
    try:
        source = Transition(
            type="failing",
            cluster="c1",
            timestamp=time.time(),
            kind="GitRepository",
            namespace="flux-system",
            name="repo",
            status="failing",
            reason="GitOperationFailed",
            root_cause=rc,
        )
        await bridge.accept_transition(source.as_dict())
        dependents = [
            Transition(
                type="failing",
                cluster="c1",
                timestamp=time.time(),
                kind="Kustomization",
                namespace="apps",
                name=f"app-{i:02d}",
                status="failing",
                reason="DependencyNotReady",
                root_cause=rc,
            )
            for i in range(20)
        ]  # reported together, as an exporter reports a source's dependents
        await asyncio.gather(*(bridge.accept_transition(d.as_dict()) for d in dependents))
        await eventually(lambda: len(destination.applied) == 1)
        summary = destination.requests[0].json["data"]["summary"]
        assert summary["count"] == 21
        assert summary["root_cause"]["name"] == "repo"
        assert len(summary["dependents"]) == 20
        assert "c1/Kustomization/apps/app-07" in summary["dependents"]
    finally:
        await bridge.stop()


async def test_dedup_recovery_and_once_per_revision(
    tmp_path: Path, destination: FakeDestination, client: aiohttp.ClientSession
) -> None:
    route = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}
    bridge = make_bridge(bridge_config(tmp_path, {"ci": fast_webhook(destination.url)}, route))
    await bridge.start()
    sha_a = "main@sha1:" + "a" * 40
    sha_b = "main@sha1:" + "b" * 40

    async def post(**kw: object) -> None:
        body = json.dumps(flux_event(**kw)).encode()  # type: ignore[arg-type]
        async with client.post(f"http://127.0.0.1:{bridge.port}/flux/c1", data=body) as r:
            assert r.status == 202

    try:
        for _ in range(5):  # Flux repeats the error on every retry
            await post(revision=sha_a)
        ok = {
            "severity": "info",
            "reason": "ReconciliationSucceeded",
            "message": "Reconciliation finished in 1.2s",
        }
        await post(revision=sha_a, **ok)  # recovery
        await post(
            revision=sha_a, **{**ok, "message": "Reconciliation finished in 0.9s"}
        )  # routine
        await post(revision=sha_b, **ok)  # rollout of a new revision
        await eventually(lambda: len(destination.applied) == 3)
        await drained(bridge, "ci")
        sent = [(e["status"], e["revision"]) for e in destination.applied_events()]
        assert sent == [("failing", sha_a), ("ready", sha_a), ("ready", sha_b)]
        assert (
            metric(bridge, "fluxwatch_bridge_events_suppressed_total", {"reason": "duplicate"}) == 4
        )
        assert (
            metric(
                bridge, "fluxwatch_bridge_events_suppressed_total", {"reason": "once_per_revision"}
            )
            == 1
        )
    finally:
        await bridge.stop()
