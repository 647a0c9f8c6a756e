"""Exporters in other pods reach the bridge over HTTP: authenticated, acknowledged after storage,
retried from a bounded buffer, so a bridge restart loses nothing the exporter still holds."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from exporter.bridgeclient import BridgeClient
from exporter.selfmetrics import SelfMetrics
from exporter.transitions import Transition
from tests.pipelines.bridgeharness import (
    TOKEN,
    BridgeRunner,
    bridge_document,
    stored_transitions,
    until,
)


def transition(i: int) -> Transition:
    return Transition(
        type="failing",
        cluster=f"prod-{i % 7:03d}",
        timestamp=1_700_000_000.0 + i,
        kind="Kustomization",
        namespace="apps",
        name=f"app-{i}",
        status="failing",
        reason="HealthCheckFailed",
        revision="main@sha1:" + f"{i:040x}",
    )


def sent(metrics: SelfMetrics, item: str) -> float:
    return metrics.bridge_sent.labels(item)._value.get()


def dropped(metrics: SelfMetrics, reason: str) -> float:
    return metrics.bridge_dropped.labels(reason)._value.get()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no-token", "wrong-token", "wrong-scheme"],
)
async def test_post_without_the_token_is_401_and_stores_nothing(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    try:
        body = json.dumps({"transitions": [transition(1).as_dict()]})
        report = json.dumps(
            {
                "shard": 0,
                "total_shards": 1,
                "synced": True,
                "clusters": [
                    {
                        "cluster": "c1",
                        "objects": [
                            {
                                "kind": "Kustomization",
                                "namespace": "a",
                                "name": "b",
                                "applied": "main@sha1:" + "a" * 40,
                            }
                        ],
                    }
                ],
            }
        )
        async with aiohttp.ClientSession() as http:
            for path, payload in (
                ("/exporter/v1/transitions", body),
                ("/exporter/v1/rollouts", report),
            ):
                async with http.post(runner.url + path, data=payload, headers=headers) as resp:
                    assert resp.status == 401
                    assert (await resp.json())["error"] == "bad_token"
            async with http.get(runner.url + "/rollouts") as resp:
                assert (await resp.json())["rollouts"] == []
    finally:
        await runner.stop()
    assert stored_transitions(tmp_path / "state") == 0


async def test_malformed_transition_is_rejected_alone(tmp_path: Path) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    try:
        batch = [transition(1).as_dict(), {"type": "exploded", "cluster": "x"}]
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                runner.url + "/exporter/v1/transitions",
                json={"transitions": batch},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as resp,
        ):
            assert resp.status == 202
            answer = await resp.json()
    finally:
        await runner.stop()
    assert len(answer["accepted"]) == 1
    assert answer["rejected"][0]["index"] == 1
    assert stored_transitions(tmp_path / "state") == 1


async def test_bridge_restart_loses_nothing_the_exporter_holds(tmp_path: Path) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    metrics = SelfMetrics()
    client = BridgeClient(runner.url, TOKEN, metrics, buffer_size=1000)
    client.start()
    try:
        for i in range(200):
            await client.publish(transition(i))
        await until(lambda: sent(metrics, "transition") == 200, "the first 200 acknowledged")
        await runner.stop()  # the bridge goes away; the exporter keeps producing
        for i in range(200, 500):
            await client.publish(transition(i))
        await until(
            lambda: metrics.bridge_post_errors.labels("connection")._value.get() > 0,
            "a failed POST while the bridge is down",
        )
        assert client.buffered == 300
        await runner.start()  # same port, same state directory
        assert await client.flush(30.0)
    finally:
        await client.stop()
        await runner.stop()
    assert sent(metrics, "transition") == 500
    assert dropped(metrics, "buffer_full") == 0
    assert stored_transitions(tmp_path / "state") == 500


async def test_full_buffer_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    port = runner.port
    await runner.stop()
    metrics = SelfMetrics()
    client = BridgeClient(f"http://127.0.0.1:{port}", TOKEN, metrics, buffer_size=50)
    for i in range(80):  # not started: nothing leaves the buffer
        await client.publish(transition(i))
    assert client.buffered == 50
    assert dropped(metrics, "buffer_full") == 30
    assert metrics.bridge_buffered._value.get() == 50
    await runner.start()
    client.start()
    try:
        assert await client.flush(30.0)
    finally:
        await client.stop()
        await runner.stop()
    assert stored_transitions(tmp_path / "state") == 50


async def test_wrong_token_is_retried_not_dropped(tmp_path: Path) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    metrics = SelfMetrics()
    client = BridgeClient(runner.url, "not-the-token", metrics)
    client.start()
    try:
        await client.publish(transition(1))
        await until(
            lambda: metrics.bridge_post_errors.labels("unauthorized")._value.get() >= 2,
            "two refused attempts",
        )
        assert client.buffered == 1
        assert "not-the-token" not in repr(client)
    finally:
        await client.stop(grace=0.1)
        await runner.stop()
    assert stored_transitions(tmp_path / "state") == 0
