"""A dropped or ended watch stream resumes from the last resourceVersion, without relisting."""

from __future__ import annotations

import dataclasses

from catalogue import exporter as catalogue
from exporter.app import Exporter
from simulator.server import SimulatorServer
from tests.exporter.kube.conftest import (
    FAST_WATCH,
    eventually,
    make_failing,
    scrape,
    settings_for,
    value,
)


def _reachable(exporter: Exporter) -> bool:
    state = exporter.store.clusters["c1"].state
    return state is not None and state.reachable


def _status(exporter: Exporter, kind: str, namespace: str, name: str) -> str | None:
    state = exporter.store.state_of("c1", kind, namespace, name)
    return None if state is None else state.derived.status


async def test_aborted_stream_resumes_and_delivers_changes_made_meanwhile(
    sim: SimulatorServer,
) -> None:
    c1 = sim.cluster("c1")
    target = c1.objects("Kustomization")[0]
    namespace, name = target["metadata"]["namespace"], target["metadata"]["name"]
    async with Exporter(settings_for(sim, contexts=("c1",))) as exporter:
        await eventually(exporter.ready)
        assert _status(exporter, "Kustomization", namespace, name) == "ready"
        c1.set_outage("refuse")  # aborts every open stream of c1 mid-flight
        await eventually(lambda: not _reachable(exporter))
        c1.apply(make_failing(target))  # happens while the exporter cannot see the cluster
        c1.set_outage(None)
        await eventually(lambda: _status(exporter, "Kustomization", namespace, name) == "failing")
        samples = await scrape(exporter.url)
    # The change came through the resumed watch: nothing was listed a second time.
    assert value(samples, catalogue.RELISTS.name, cluster="c1") in (None, 0.0)
    assert (value(samples, catalogue.WATCH_RESTARTS.name, cluster="c1", reason="error") or 0) >= 1


async def test_server_timeout_resumes_from_last_version(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    target = c1.objects("GitRepository")[0]
    namespace, name = target["metadata"]["namespace"], target["metadata"]["name"]
    watch = dataclasses.replace(FAST_WATCH, server_timeout_seconds=1.0)
    settings = settings_for(sim, contexts=("c1",), watch=watch)
    async with Exporter(settings) as exporter:
        await eventually(exporter.ready)
        # Every stream ends after 1 s; wait for a few ends, then change an object.
        registry = exporter.health.registry
        sample = catalogue.WATCH_RESTARTS.name
        await eventually(
            lambda: (
                (registry.get_sample_value(sample, {"cluster": "c1", "reason": "timeout"}) or 0)
                >= 15
            ),
            within=10,
        )
        c1.apply(make_failing(target, "GitOperationFailed"))
        await eventually(lambda: _status(exporter, "GitRepository", namespace, name) == "failing")
        samples = await scrape(exporter.url)
    assert value(samples, catalogue.RELISTS.name, cluster="c1") in (None, 0.0)
