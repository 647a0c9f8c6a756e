"""``flux_resource_status_since_timestamp_seconds`` is when the object entered its status: a
failing object that Flux retries (Ready goes Unknown while each retry runs, then False again with
a new transition time) keeps the time of its first failure, through reason and message changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exporter.status import parse_time
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import value
from tests.exporter.simfleet import ref, running


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


async def test_a_kustomization_retrying_a_build_failure_keeps_its_since(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        ns, name = ref(run.c1.objects("Kustomization")[0])
        ks = {"cluster": "c1", "kind": "Kustomization", "namespace": ns, "name": name}
        run.c1.fail("Kustomization", ns, name, "build")
        first_failure: str | None = None
        failures_seen: set[str] = set()
        for _ in range(200):  # Flux retries a failed Kustomization every interval (10 min here)
            await run.sim.advance(20)
            obj = run.c1.get("Kustomization", ns, name)
            assert obj is not None
            ready = _ready(obj)
            if ready["status"] != "False":
                continue  # a retry is running (Ready=Unknown)
            assert ready["reason"] == "BuildFailed"
            if ready["lastTransitionTime"] in failures_seen:
                continue
            failures_seen.add(ready["lastTransitionTime"])
            first_failure = first_failure or ready["lastTransitionTime"]
            # The manual clock stands still: the exporter catches up with this failure.
            data = await run.until(
                lambda d: (
                    value(d, "flux_resource_status", status="failing", **ks) is not None
                    or value(
                        d, "flux_resource_status", status="failing", reason="BuildFailed", **ks
                    )
                    == 1
                ),
                "the exporter to show the failure",
            )
            since = value(data, "flux_resource_status_since_timestamp_seconds", **ks)
            assert since == parse_time(first_failure), f"moved at retry {len(failures_seen)}"
            if len(failures_seen) >= 4:
                break
        assert len(failures_seen) >= 4, "Flux retried fewer than 4 times"


T0 = 1_790_000_000.0


def _at(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ks(state: str, at: float, reason: str = "BuildFailed", message: str = "") -> dict[str, Any]:
    base = o.kustomization()
    if state == "ready":
        return o.ready(base, "ReconciliationSucceeded", _at(at))
    if state == "progressing":
        return o.progressing(base, _at(at))
    if state == "stalled":
        obj = o.failing(base, reason, message, _at(at), retrying=False)
        obj["status"]["conditions"].append(o.cond("Stalled", "True", "RetriesExceeded", at=_at(at)))
        return obj
    if state == "suspended":
        obj = o.failing(base, reason, message, _at(at))
        obj["spec"]["suspend"] = True
        return obj
    return o.failing(base, reason, message, _at(at), retrying=False)


# (state, condition time, reason, message) per event -> expected since after the last event.
CASES: list[tuple[str, list[tuple[str, float, str, str]], float | None]] = [
    ("first failure", [("ready", 0, "", ""), ("failing", 10, "BuildFailed", "")], 10),
    (
        "retries keep it",
        [
            ("ready", 0, "", ""),
            ("failing", 10, "BuildFailed", ""),
            ("progressing", 16, "", ""),
            ("failing", 17, "BuildFailed", ""),
            ("progressing", 30, "", ""),
            ("failing", 31, "BuildFailed", ""),
        ],
        10,
    ),
    (
        "reason and message changes keep it",
        [
            ("ready", 0, "", ""),
            ("failing", 10, "BuildFailed", "one"),
            ("progressing", 16, "", ""),
            ("failing", 17, "HealthCheckFailed", "two"),
            ("failing", 18, "HealthCheckFailed", "three"),
        ],
        10,
    ),
    (
        "a retry shows its own start",
        [("ready", 0, "", ""), ("failing", 10, "BuildFailed", ""), ("progressing", 16, "", "")],
        16,
    ),
    (
        "stalled is a new status",
        [
            ("failing", 10, "BuildFailed", ""),
            ("progressing", 16, "", ""),
            ("stalled", 40, "BuildFailed", ""),
        ],
        40,
    ),
    (
        "ready again starts afresh",
        [
            ("failing", 10, "BuildFailed", ""),
            ("ready", 50, "", ""),
            ("progressing", 60, "", ""),
            ("failing", 70, "BuildFailed", ""),
        ],
        70,
    ),
    (
        "a suspension ends the spell",
        [
            ("failing", 10, "BuildFailed", ""),
            ("suspended", 20, "BuildFailed", ""),
            ("progressing", 30, "", ""),
            ("failing", 40, "BuildFailed", ""),
        ],
        40,
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_since_by_event_sequence(
    events: list[tuple[str, float, str, str]], expected: float | None
) -> None:
    clock = [T0]
    store = MetricStore(clock=lambda: clock[0])
    for state, at, reason, message in events:
        clock[0] = T0 + at + 0.5  # the event arrives just after the condition changed
        store.upsert("c1", "Kustomization", _ks(state, at, reason or "BuildFailed", message))
    got = store.state_of("c1", "Kustomization", "flux-system", "app")
    assert got is not None
    assert got.since == (None if expected is None else T0 + expected)
