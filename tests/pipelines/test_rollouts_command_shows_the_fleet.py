"""`fluxwatch rollouts` shows the rollout a release manager watches, from the state directory
or from a running bridge, with the same figures either way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from fluxwatch.cli import main
from tests.pipelines.bridgeharness import TOKEN, BridgeRunner, bridge_document
from tests.pipelines.bridgeharness import podinfo_object as obj

SHA_A, SHA_B = "a" * 40, "b" * 40


async def test_table_and_json_from_state_dir_and_bridge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    try:
        clusters = {f"c{i}": [obj(f"main@sha1:{SHA_A}")] for i in range(5)}
        reports = [
            clusters,
            {
                "c0": [obj(f"main@sha1:{SHA_B}")],
                "c1": [obj(f"main@sha1:{SHA_B}")],
                "c2": [obj(f"main@sha1:{SHA_A}", f"main@sha1:{SHA_B}", "failing", "BuildFailed")],
                "c3": [obj(f"main@sha1:{SHA_A}", f"main@sha1:{SHA_B}")],
                "c4": [obj(f"main@sha1:{SHA_A}", f"main@sha1:{SHA_B}")],
            },
        ]
        async with aiohttp.ClientSession() as http:
            for report in reports:
                doc = {
                    "shard": 0,
                    "total_shards": 1,
                    "synced": True,
                    "clusters": [{"cluster": c, "objects": o} for c, o in report.items()],
                }
                async with http.post(
                    runner.url + "/exporter/v1/rollouts",
                    json=doc,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as resp:
                    assert resp.status == 202
        capsys.readouterr()
        assert await asyncio.to_thread(main, ["rollouts", "--bridge-url", runner.url]) == 0
        from_bridge = capsys.readouterr().out
        assert (
            await asyncio.to_thread(main, ["rollouts", "--bridge-url", runner.url, "--json"]) == 0
        )
        rows = json.loads(capsys.readouterr().out)
    finally:
        await runner.stop()
    assert main(["rollouts", "--state-dir", str(tmp_path / "state")]) == 0
    from_disk = capsys.readouterr().out
    lines = from_disk.splitlines()
    assert lines[0].split() == [
        "OBJECT",
        "REVISION",
        "STATE",
        "APPLIED",
        "FAILING",
        "AGE",
        "SLOWEST",
    ]
    assert lines[1].split()[:6] == [
        "Kustomization",
        "apps/podinfo",
        "main@sha1:bbbbbbbbbbbb",
        "failure",
        "2/5",
        "1",
    ]
    assert "(c2)" in lines[1]
    assert lines[2].split()[2:4] == ["main@sha1:aaaaaaaaaaaa", "superseded"]

    # The same rows whichever way they were read (ages aside).
    def strip(text: str) -> list[list[str]]:
        return [line.split()[:5] for line in text.splitlines()]

    assert strip(from_bridge) == strip(from_disk)
    current = rows[0]
    assert (current["applied"], current["pending"], current["failing"], current["total"]) == (
        2,
        2,
        1,
        5,
    )
    assert current["failing_clusters"] == [{"cluster": "c2", "reason": "BuildFailed"}]
    assert {s["cluster"] for s in current["slowest"]} <= {"c2", "c3", "c4"}


def test_missing_state_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollouts", "--state-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fluxwatch rollouts:")
    assert "\n" not in err


async def test_bad_report_is_400_naming_the_field_and_stores_nothing(tmp_path: Path) -> None:
    runner = BridgeRunner(bridge_document(tmp_path / "state", tmp_path / "token"), tmp_path)
    await runner.start()
    bad = {
        "shard": 0,
        "total_shards": 1,
        "synced": True,
        "clusters": [
            {"cluster": "c1", "objects": [obj(f"main@sha1:{SHA_A}")]},
            {"cluster": "c2", "objects": [{"kind": "Kustomization", "name": 7}]},
        ],
    }
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                runner.url + "/exporter/v1/rollouts",
                json=bad,
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as resp:
                assert resp.status == 400
                answer = await resp.json()
            async with http.get(runner.url + "/rollouts", headers={"Accept": "text/html"}) as resp:
                page = await resp.text()
                assert resp.content_type == "text/html"
            async with http.get(runner.url + "/rollouts") as resp:
                rows = (await resp.json())["rollouts"]
    finally:
        await runner.stop()
    assert answer["error"] == "invalid_event"
    assert answer["message"] == "clusters[1].objects[0].name: expected a string"
    assert rows == []  # the whole report was refused: c1's valid part is not half-stored
    assert "no rollouts yet" in page
