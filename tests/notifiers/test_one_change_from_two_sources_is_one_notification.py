"""A Flux event and the exporter's transition about the same change (object, status, revision)
within the de-duplication window are one notification, whichever arrives first; where both are
kept (they say different things), each shows where it came from."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from notifiers.app import Bridge
from tests.notifiers.fakes import (
    FakeDestination,
    bridge_config,
    drained,
    eventually,
    fast_webhook,
    make_bridge,
    metric,
    parsed_flux_event,
)

REVISION = "main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40"
ROUTE = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}


def transition(status: str, reason: str, revision: str = REVISION) -> dict[str, Any]:
    return {
        "type": "failing" if status == "failing" else status,
        "cluster": "c1",
        "timestamp": time.time(),
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "uid": "uid-podinfo",
        "status": status,
        "previous_status": "ready",
        "reason": reason,
        "message": "dependency 'flux-system/infra' is not ready",
        "revision": revision,
        "previous_revision": "",
        "tenant": "",
        "labels": {},
        "annotations": {},
        "root_cause": None,
        "latency_seconds": None,
    }


async def flux(bridge: Bridge, **kw: Any) -> None:
    event = parsed_flux_event("podinfo", **kw)
    await bridge.submit([event])


# kustomize-controller reports a dependency wait as an *info* event, with or without a revision
DEPENDENCY_WAIT = {
    "severity": "info",
    "reason": "DependencyNotReady",
    "message": "Dependencies do not meet ready condition, retrying in 30s",
}


@pytest.mark.parametrize("flux_revision", [REVISION, ""], ids=["same-revision", "no-revision"])
@pytest.mark.parametrize("first", ["flux", "exporter"])
async def test_same_change_from_flux_and_exporter_is_sent_once(
    tmp_path: Path, destination: FakeDestination, first: str, flux_revision: str
) -> None:
    bridge = make_bridge(bridge_config(tmp_path, {"ci": fast_webhook(destination.url)}, ROUTE))
    await bridge.start(serve=False)
    try:
        if first == "flux":
            await flux(bridge, revision=flux_revision, **DEPENDENCY_WAIT)
            await bridge.accept_transition(transition("failing", "DependencyNotReady"))
        else:
            await bridge.accept_transition(transition("failing", "DependencyNotReady"))
            await flux(bridge, revision=flux_revision, **DEPENDENCY_WAIT)
        await eventually(lambda: len(destination.applied) == 1)
        await drained(bridge, "ci")
        assert len(destination.applied) == 1
        [sent] = destination.applied_events()
        assert sent["status"] == "failing"
        assert sent["source"] == ("flux" if first == "flux" else "transition")
        assert (
            metric(bridge, "fluxwatch_bridge_events_suppressed_total", {"reason": "duplicate"}) == 1
        )
    finally:
        await bridge.stop()


async def test_different_news_from_each_source_is_kept_and_says_where_it_came_from(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    doc = bridge_config(tmp_path, {"ci": {"type": "console"}}, ROUTE)
    bridge = make_bridge(doc, console=out)
    await bridge.start(serve=False)
    try:
        await flux(bridge, severity="error", reason="HealthCheckFailed")
        await bridge.accept_transition(transition("stalled", "RetriesExceeded"))
        await eventually(lambda: out.getvalue().count("Kustomization apps/podinfo") == 2)
        lines = [line for line in out.getvalue().splitlines() if "apps/podinfo" in line]
        assert lines[0].endswith("(HealthCheckFailed) [Flux event]")
        assert lines[1].endswith("(RetriesExceeded) [exporter]")
    finally:
        await bridge.stop()
