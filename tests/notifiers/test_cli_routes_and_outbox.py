"""`fluxwatch bridge routes test` (golden output) and `fluxwatch outbox list|show|replay|purge`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from fluxwatch.cli import main
from notifiers.store import connect
from tests.notifiers.fakes import (
    FakeDestination,
    ManualClock,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    parsed_flux_event,
    query_outbox,
)

TESTDATA = Path(__file__).parent / "testdata"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

CASES = [
    ("payments-prod", "event-payments-failing.json", ["--cluster", "prod-eu-1"]),
    ("payments-dev", "event-payments-failing.json", ["--cluster", "dev-1"]),
    ("transition", "transition-revision-applied.yaml", []),
]


@pytest.mark.parametrize(("event", "extra"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_routes_test_prints_destinations_and_why(
    event: str, extra: list[str], request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "bridge",
            "routes",
            "test",
            "--config",
            str(TESTDATA / "routes.yaml"),
            "--event",
            str(TESTDATA / event),
            *extra,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    golden = GOLDEN / f"routes-test-{request.node.callspec.id}.txt"
    if UPDATE:
        golden.write_text(out)
    assert out == golden.read_text()


def test_routes_test_rejects_a_bad_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "e.json"
    bad.write_text('{"involvedObject": {"kind": 3}}')
    code = main(
        ["bridge", "routes", "test", "--config", str(TESTDATA / "routes.yaml"), "--event", str(bad)]
    )
    assert code == 2
    assert "invalid_event" in capsys.readouterr().err


def test_bridge_refuses_a_bad_config(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bridge", "--config", str(TESTDATA / "bad-unknown-type.yaml")])
    assert code == 2
    assert "bridge.destinations.ops.type" in capsys.readouterr().err


@pytest.mark.usefixtures("outbox_backend")  # SQLite and PostgreSQL
async def test_outbox_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = await FakeDestination(default=Step(410)).start()
    state = tmp_path / "state"
    route = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}
    doc = bridge_config(state, {"ci": fast_webhook(dest.url)}, route)
    bridge = make_bridge(doc)
    await bridge.start()
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(json.dumps(doc))

    def count(where: str) -> int:
        return int(query_outbox(state, f"SELECT count(*) FROM notifications {where}")[0][0])

    try:
        for name in ("a", "b"):
            await bridge.submit([parsed_flux_event(name, cluster="c")])
        await eventually(lambda: count("WHERE status='dead'") == 2)
        on_postgres = "postgres" in doc["bridge"].get("outbox", {})
        s = ["--config", str(config)] if on_postgres else ["--state-dir", str(state)]

        assert main(["outbox", "list", *s, "--status", "dead"]) == 0
        listing = capsys.readouterr().out
        assert "ci: dead 2" in listing
        assert "HTTP 410" in listing

        assert main(["outbox", "list", *s, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["notifications"]
        first = min(r["id"] for r in rows)

        assert main(["outbox", "show", *s, str(first)]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["status"] == "dead"
        for key in ("created_at", "last_attempt_at", "next_attempt_at"):  # readable times
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown[key]), shown[key]
        assert shown["delivered_at"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shown["events"][0]["received_at"])
        assert shown["events"][0]["name"] in ("a", "b")
        assert shown["idempotency_key"].startswith("fw_")

        dest.default = Step(200)
        assert main(["outbox", "replay", *s, str(first)]) == 0
        assert "requeued 1" in capsys.readouterr().out
        await eventually(lambda: len(dest.applied) == 1)

        assert main(["outbox", "purge", *s, "--dead"]) == 0
        assert "purged 1" in capsys.readouterr().out
        await eventually(lambda: count("") == 1)
        assert main(["outbox", "replay", *s]) == 2  # nothing selected
        assert main(["outbox", "show", *s, "999"]) == 1
    finally:
        await bridge.stop()
        await dest.stop()


async def test_outbox_is_pruned_after_retention(
    tmp_path: Path, destination: FakeDestination
) -> None:
    """Delivered rows stay for ``retention`` and go at the first prune after it (injected clock)."""
    clock = ManualClock()
    state = tmp_path / "state"
    route = {"destinations": ["ci"], "group_by": ["..."], "group_wait": "0s"}
    doc = bridge_config(
        state,
        {"ci": fast_webhook(destination.url)},
        route,
        outbox={"retention": "1h", "prune_interval": "1m"},
        dedup={"window": "30m"},
    )
    bridge = make_bridge(doc, clock=clock)
    await bridge.start(serve=False)
    conn = connect(state / "outbox.sqlite3")
    try:
        for i in range(5):
            await bridge.submit([parsed_flux_event(f"app-{i}", cluster="c", now=clock())])
        await eventually(lambda: len(destination.applied) == 5)

        def rows() -> dict[str, int]:
            return {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("events", "deliveries", "notifications", "dedup_state")
            }

        async def prune_at(seconds_later: float) -> None:
            clock.advance(seconds_later)
            await eventually(lambda: bridge.last_prune_at == clock())

        await prune_at(59 * 60)  # a prune within the retention removes nothing delivered
        assert rows() == {"events": 5, "deliveries": 5, "notifications": 5, "dedup_state": 5}
        await prune_at(2 * 60)  # past the retention: all of it goes
        # but what the objects last were: they are failing, a recovery is still owed
        assert rows() == {"events": 0, "deliveries": 0, "notifications": 0, "dedup_state": 5}
        assert bridge.outbox._last_flush == {}  # memory of the groups goes with their rows
    finally:
        conn.close()
        await bridge.stop()
