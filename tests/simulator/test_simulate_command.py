"""`fluxwatch simulate` and `fluxwatch demo` serve until SIGTERM/SIGINT; bad input exits 2."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config


async def start(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while not any(line.startswith("kubeconfig:") for line in lines):
            raw = await proc.stdout.readline()
            assert raw, f"exited early: {(await proc.communicate())[1].decode()}"
            lines.append(raw.decode().rstrip())
    return proc, lines


@pytest.mark.parametrize(
    ("args", "stop", "banner"),
    [
        (["simulate", "--preset=small", "--time-scale=99"], signal.SIGTERM, "simulator stopped"),
        (["demo", "--time-scale", "100"], signal.SIGINT, "demo stopped"),
    ],
    ids=["simulate-sigterm", "demo-sigint"],
)  # fmt: skip
async def test_serves_then_stops_cleanly(
    tmp_path: Path, args: list[str], stop: signal.Signals, banner: str
) -> None:
    proc, lines = await start(*args, "--state-dir", str(tmp_path))
    assert any("3 clusters" in line for line in lines)
    kubeconfig = tmp_path / "kubeconfig"
    assert f"kubeconfig: {kubeconfig}" in "\n".join(lines)
    api = await config.new_client_from_config(config_file=str(kubeconfig), context="c3-legacy")
    async with api:
        listed = await client.CustomObjectsApi(api).list_cluster_custom_object(
            "helm.toolkit.fluxcd.io", "v2beta2", "helmreleases"
        )
    assert listed["items"]
    proc.send_signal(stop)
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert banner in out.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "{tmp}/bad.yaml"], "{tmp}/bad.yaml: clusters: at least one cluster"),
        (["--time-scale", "0"], "--time-scale must be positive"),
        (["--bookmark-interval", "0"], "--bookmark-interval must be positive"),
        (["--listen", "nowhere"], "expected HOST:PORT"),
        (["--events-hmac-key-file", "{tmp}/absent"], "--events-hmac-key-file: cannot read"),
    ],
    ids=["bad-scenario", "bad-scale", "bad-bookmark-interval", "bad-listen", "missing-key-file"],
)
async def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "bad.yaml").write_text("clusters: []\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "simulate",
        *[a.replace("{tmp}", str(tmp_path)) for a in args],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert message.replace("{tmp}", str(tmp_path)) in err.decode()


async def test_logs_a_line_per_notable_fault(tmp_path: Path) -> None:
    scenario = tmp_path / "scripted.yaml"
    scenario.write_text(
        "clusters: [{name: solo}]\n"
        "script:\n"
        "  - {at: 2, action: fail, kind: Kustomization, name: infra, fault: build}\n"
        "  - {at: 3, action: outage, cluster: solo, mode: refuse}\n"
    )
    proc, _ = await start("simulate", "--scenario", str(scenario), "--time-scale", "20")
    assert proc.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(30):
        while not any("API outage (refuse)" in line for line in seen):
            seen.append((await proc.stderr.readline()).decode())
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        await proc.communicate()
    assert proc.returncode == 0
    assert any("solo: fault build on Kustomization flux-system/infra" in line for line in seen)
