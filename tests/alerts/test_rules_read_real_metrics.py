"""Every metric a generated rule reads is in the catalogue and in a real scrape: the exporter
watching the simulator through the real client, and the bridge after delivering an event.

A rule built on a metric nobody serves never fires and never says so; this is the test that
catches it (the fate of the alerts once copied from the Flux docs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp

from alerts.render import alerting_rules, recording_rules
from alerts.settings import AlertSettings
from catalogue import bridge, exporter, prometheus
from tests.exporter.scrape import Samples, samples, value
from tests.exporter.simfleet import running
from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
)

SETTINGS = AlertSettings()


def used_metrics() -> set[str]:
    rules = [*alerting_rules(SETTINGS), *recording_rules(SETTINGS)]
    return {m for r in rules for m in r.metrics}


def catalogued(name: str) -> bool:
    specs = {**exporter.BY_NAME, **bridge.BY_NAME, **{s.name: s for s in prometheus.ALL}}
    if name in specs:
        return True
    base = name.removesuffix("_bucket")
    return base != name and base in specs and specs[base].type == "histogram"


def test_every_rule_metric_is_catalogued() -> None:
    used = used_metrics()
    assert len(used) >= 20
    assert sorted(m for m in used if not catalogued(m)) == []


def names(data: Samples) -> set[str]:
    return {name for name, _ in data}


async def test_exporter_serves_every_metric_the_rules_read(tmp_path: Path) -> None:
    wanted = {
        m
        for m in used_metrics()
        if m in exporter.BY_NAME or m.removesuffix("_bucket") in exporter.BY_NAME
    }
    seen: set[str] = set()
    async with running(tmp_path) as run:
        sim, c1 = run.sim, run.c1

        async def step_until(check: Callable[[Samples], bool], what: str) -> None:
            for _ in range(200):
                data = await run.scrape()
                seen.update(names(data))
                if check(data):
                    return
                await sim.advance(5)
            raise AssertionError(f"timed out waiting for {what}")

        def has(metric: str) -> Callable[[Samples], bool]:
            return lambda data: metric in names(data)

        hr = {"kind": "HelmRelease", "namespace": "search", "name": "frontend"}
        # a HelmRelease fails (transitions), then heals (time to recover)
        c1.fail("HelmRelease", "search", "frontend", "upgrade")
        await step_until(
            lambda d: value(d, "flux_resource_status", status="failing", **hr) == 1, "failing"
        )
        c1.heal("HelmRelease", "search", "frontend")
        await step_until(has("flux_resource_time_to_recover_seconds_bucket"), "a recovery")
        # a commit on flux-system is applied (revisions, latency) ...
        sim.new_commit("GitRepository", "flux-system", "flux-system")
        await step_until(has("flux_revision_apply_latency_seconds_bucket"), "an applied revision")
        # ... and one the app's Kustomization cannot build drifts
        c1.fail("Kustomization", "payments", "podinfo", "build")
        sim.new_commit("GitRepository", "payments", "podinfo")
        await step_until(has("flux_resource_revision_drift_since_timestamp_seconds"), "a drift")
        # rollout counts come from a periodic scan of the store (every 0.5 s of real time)
        rollouts = await run.until(has("flux_rollout_clusters"), "the rollout counts")
        seen.update(names(rollouts))
    assert sorted(wanted - seen) == []


async def test_bridge_serves_every_metric_the_rules_read(tmp_path: Path) -> None:
    wanted = {
        m
        for m in used_metrics()
        if m in bridge.BY_NAME or m.removesuffix("_bucket") in bridge.BY_NAME
    }
    assert wanted
    dest = await FakeDestination().start()
    b = make_bridge(bridge_config(tmp_path / "state", {"hook": fast_webhook(dest.url)}))
    await b.start()
    try:
        transition = {
            "type": "failing",
            "cluster": "c1",
            "kind": "HelmRelease",
            "namespace": "search",
            "name": "frontend",
            "status": "failing",
            "previous_status": "ready",
            "reason": "UpgradeFailed",
            "message": "upgrade failed",
            "timestamp": 1_700_000_000.0,
        }
        await b.accept_transition(transition)
        await eventually(lambda: len(dest.applied) == 1)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{b.port}/metrics") as resp,
        ):
            assert resp.status == 200
            seen = names(samples(await resp.text()))
    finally:
        await b.stop()
        await dest.stop()
    assert sorted(wanted - seen) == []
