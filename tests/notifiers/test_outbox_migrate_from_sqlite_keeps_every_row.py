"""`fluxwatch outbox migrate --from-sqlite DIR` moves a single-node bridge's outbox into
PostgreSQL: pending notifications are sent from there under their old idempotency keys,
delivered ones are not sent again, dead letters stay dead and can be replayed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fluxwatch.cli import main
from tests.notifiers.fakes import (
    FakeDestination,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    parsed_flux_event,
)


async def test_pending_delivered_and_dead_rows_move_to_postgres(
    tmp_path: Path, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = await FakeDestination(default=Step(200)).start()
    gone = await FakeDestination(default=Step(410)).start()
    down = await FakeDestination(default=Step(503)).start()
    destinations = {
        "ok": fast_webhook(ok.url),
        "gone": fast_webhook(gone.url),
        "down": fast_webhook(down.url),
    }
    route = {"destinations": ["ok", "gone", "down"], "group_by": ["..."], "group_wait": "0s"}
    state = tmp_path / "state"
    old_db = state / "outbox.sqlite3"
    try:
        single = make_bridge(bridge_config(state, destinations, route))
        await single.start(serve=False)
        try:
            for name in ("a", "b", "c"):
                event = parsed_flux_event(name)
                await single.submit([event])

            def statuses() -> dict[tuple[str, str], int]:
                with sqlite3.connect(old_db) as conn:
                    rows = conn.execute(
                        "SELECT destination, status, count(*) FROM notifications GROUP BY 1, 2"
                    ).fetchall()
                return {(d, s): n for d, s, n in rows}

            await eventually(
                lambda: (
                    statuses()
                    == {("ok", "delivered"): 3, ("gone", "dead"): 3, ("down", "pending"): 3}
                )
            )
            await eventually(lambda: len(down.requests) >= 3)  # tried, and still owed
        finally:
            await single.stop()
        with sqlite3.connect(old_db) as conn:
            owed_keys = {
                r[0]
                for r in conn.execute(
                    "SELECT idempotency_key FROM notifications WHERE destination = 'down'"
                )
            }

        dsn_file = tmp_path / "outbox.dsn"
        dsn_file.write_text(postgres_dsn)
        doc = bridge_config(
            tmp_path / "unused-state",
            destinations,
            route,
            outbox={"postgres": {"dsn_file": str(dsn_file)}},
        )
        config = tmp_path / "fluxwatch.yaml"
        config.write_text(json.dumps(doc))
        migrate = ["outbox", "migrate", "--config", str(config), "--from-sqlite", str(state)]
        assert main(migrate) == 0
        copied = capsys.readouterr().out
        assert "notifications 9" in copied
        assert "events 3" in copied
        assert main(migrate) == 1  # never twice into the same database
        assert "not empty" in capsys.readouterr().err

        assert main(["outbox", "list", "--config", str(config), "--json"]) == 0
        counts = json.loads(capsys.readouterr().out)["counts"]
        assert counts == {"ok": {"delivered": 3}, "gone": {"dead": 3}, "down": {"pending": 3}}

        down.default = Step(200)
        delivered_before = len(ok.requests)
        clustered = make_bridge(doc)
        await clustered.start(serve=False)
        try:
            await eventually(lambda: set(down.applied) == owed_keys)
            assert main(["outbox", "replay", "--config", str(config), "--all-dead"]) == 0
            gone.default = Step(200)
            await eventually(lambda: len(gone.applied) == 3)
        finally:
            await clustered.stop()
        assert len(ok.requests) == delivered_before  # delivered before the move: not again
        assert sorted(e["name"] for e in down.applied_events()) == ["a", "b", "c"]
    finally:
        for dest in (ok, gone, down):
            await dest.stop()


def test_migrate_needs_a_postgres_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(json.dumps(bridge_config(tmp_path / "state", {}, {"destinations": []})))
    assert main(["outbox", "migrate", "--config", str(config), "--from-sqlite", "x"]) == 2
    assert "sets no bridge.outbox.postgres" in capsys.readouterr().err
