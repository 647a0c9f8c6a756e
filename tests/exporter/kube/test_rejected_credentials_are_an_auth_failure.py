"""A cluster that answers 401 or 403 is reported as rejecting the exporter's credentials (a
metric, a warning line, the status page), not as an outage; the other clusters are unaffected."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporter.app import Exporter
from exporter.kube.client import ApiError, ConnectionFailed
from exporter.kube.clusters import ClusterSpec
from exporter.kube.fleet import ClusterRunner, describe_state
from exporter.kube.health import WatchHealth
from exporter.settings import ExporterSettings
from exporter.store import MetricStore
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import eventually, scrape, settings_for, value


def _kubeconfig_with_wrong_token(sim: SimulatorServer, tmp_path: Path, cluster: str) -> Path:
    doc = yaml.safe_load(sim.kubeconfig_path.read_text())
    for user in doc["users"]:
        if user["name"] == cluster:
            user["user"] = {"token": "revoked-token"}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_a_rejected_token_is_an_auth_failure_not_an_outage(
    sim: SimulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kubeconfig = _kubeconfig_with_wrong_token(sim, tmp_path, "c1")
    settings = settings_for(sim, kubeconfig=str(kubeconfig), contexts=("c1", "c2"))
    caplog.set_level(logging.WARNING, logger="exporter")
    async with Exporter(settings) as exporter:

        async def reported() -> bool:
            s = await scrape(exporter.url)
            return value(s, "flux_cluster_auth_failed", cluster="c1") == 1

        await eventually(reported)
        await eventually(exporter.ready)
        samples = await scrape(exporter.url)
        assert value(samples, "flux_cluster_auth_failed", cluster="c2") == 0
        assert value(samples, "flux_cluster_reachable", cluster="c2") == 1
        async with aiohttp.ClientSession() as http, http.get(exporter.url + "/") as response:
            page = await response.text()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    c1_lines = [line for line in lines if line.startswith("cluster c1:")]
    assert c1_lines, lines
    assert "credentials rejected" in c1_lines[0]
    assert "401" in c1_lines[0]
    assert "unreachable" not in c1_lines[0]
    assert "credentials rejected" in page
    assert not any(line.startswith("cluster c2:") for line in lines)  # healthy: info only


def _runner() -> ClusterRunner:
    """A runner whose answers are played by the test; its state goes to a real store."""
    return ClusterRunner(
        ClusterSpec("c1", "kubeconfig"),
        ExporterSettings(),
        MetricStore(),
        WatchHealth(CollectorRegistry()),
        asyncio.Semaphore(1),
        None,
    )


@pytest.mark.parametrize(
    ("events", "auth_failed", "reachable", "line"),
    [
        ([("fail", ApiError(401, "Unauthorized"), "")], True, False, "credentials rejected"),
        ([("fail", ApiError(403, "Forbidden"), "")], True, False, "credentials rejected"),
        (
            [("ok", None, "Kustomization"), ("fail", ApiError(403, "Forbidden"), "HelmRelease")],
            True,
            True,
            "credentials rejected, syncing",
        ),
        (
            [
                ("fail", ApiError(403, "Forbidden"), "HelmRelease"),
                ("ok", None, "Kustomization"),  # another kind's success does not clear it
            ],
            True,
            True,
            "credentials rejected",
        ),
        (
            [("fail", ApiError(401, "Unauthorized"), ""), ("ok", None, "")],
            False,
            True,
            "reachable, syncing",
        ),
        ([("fail", ConnectionFailed("refused"), "")], False, False, "unreachable"),
        ([("fail", ApiError(503, "ServiceUnavailable"), "")], False, False, "unreachable"),
    ],
    ids=[
        "401",
        "403",
        "403-for-one-kind",
        "other-kinds-do-not-clear-it",
        "accepted-again",
        "refused-is-an-outage",
        "503-is-an-outage",
    ],
)
def test_cluster_state_after_answers(
    events: list[tuple[str, BaseException | None, str]],
    auth_failed: bool,
    reachable: bool,
    line: str,
) -> None:
    runner = _runner()
    for outcome, error, kind in events:
        if outcome == "ok":
            runner.request_succeeded(kind)
        else:
            assert error is not None
            runner.request_failed(error, kind)
    assert runner.state.auth_failed is auth_failed
    assert runner.state.reachable is reachable
    assert describe_state(runner.state).startswith(line)


@pytest.mark.parametrize(
    ("code", "reason", "kind", "error"),
    [
        (401, "Unauthorized", "", "authentication failed: 401 Unauthorized"),
        (403, "Forbidden", "", "permission denied: 403 Forbidden"),
        (403, "Forbidden", "HelmRelease", "permission denied for HelmRelease: 403 Forbidden"),
    ],
    ids=["401", "403", "403-one-kind"],
)
def test_the_error_says_which_refusal(code: int, reason: str, kind: str, error: str) -> None:
    runner = _runner()
    runner.request_failed(ApiError(code, reason), kind)
    runner.request_failed(ApiError(403, "Forbidden"), "Bucket")  # a second refusal: same story
    assert runner.state.error == error
