"""A bridge with exporter intake on loopback, restartable on the same port and state directory."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from notifiers.app import Bridge
from notifiers.config import config_from_mapping

TOKEN = "exporter-token-3f9a1c"
DEADLINE = 30.0


def bridge_document(state_dir: Path, token_file: Path, **extra: Any) -> dict[str, Any]:
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    return {
        "bridge": {
            "listen": "127.0.0.1:0",
            "state_dir": str(state_dir),
            "exporters": {"token_file": str(token_file)},
            **extra,
        }
    }


def oci_github_bridge(tmp_path: Path, github_url: str, **destination: Any) -> dict[str, Any]:
    """A bridge posting fleet statuses of OCI-delivered objects to one (fake) GitHub: an
    ``oci://`` source names no Git repository, so the destination names it."""
    (tmp_path / "gh").write_text("gh-token")
    return bridge_document(
        tmp_path / "state",
        tmp_path / "token",
        rollouts={"status_interval": "0s"},
        destinations={
            "github": {
                "type": "github",
                "base_url": github_url,
                "hosts": ["github.com"],
                "token_file": str(tmp_path / "gh"),
                "repository": "acme/manifests",
                **destination,
            }
        },
    )


class BridgeRunner:
    """Starts and stops one ``Bridge``; a restart keeps the port so exporters find it again."""

    def __init__(self, document: dict[str, Any], base: Path) -> None:
        self.config = config_from_mapping(document, base_dir=base)
        self.bridge: Bridge | None = None
        self.port = 0

    async def start(self) -> Bridge:
        bridge = Bridge(self.config, listen=("127.0.0.1", self.port))
        await bridge.start()
        assert bridge.port is not None
        self.port = bridge.port
        self.bridge = bridge
        return bridge

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def stored_transitions(state_dir: Path) -> int:
    conn = sqlite3.connect(state_dir / "outbox.sqlite3")
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


async def until(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def podinfo_object(
    applied: str, wanted: str = "", status: str = "ready", reason: str = "", source_url: str = ""
) -> dict[str, object]:
    """``Kustomization apps/podinfo`` in one cluster, as an exporter's rollout report lists it."""
    return {
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "applied": applied,
        "attempted": wanted or applied,
        "wanted": wanted,
        "status": status,
        "reason": reason,
        "source_url": source_url,
    }


async def post_rollout_report(
    url: str, shard: int, total_shards: int, clusters: dict[str, list[dict[str, Any]]]
) -> None:
    """One exporter shard's rollout report, as ``fluxwatch exporter --bridge-url`` sends it."""
    doc = {
        "shard": shard,
        "total_shards": total_shards,
        "synced": True,
        "clusters": [{"cluster": c, "objects": objects} for c, objects in clusters.items()],
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/exporter/v1/rollouts", json=doc, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp,
    ):
        assert resp.status == 202, await resp.text()
