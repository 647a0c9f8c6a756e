"""Size of the PostgreSQL outbox per event: what to provision for a fleet's retention.

A bridge on a local PostgreSQL (Debian's server, started in a temporary directory) takes
BENCH_PGSIZE_EVENTS (10,000) Flux events, one object each, over HTTP and delivers them to a local
webhook (one notification per event, as a fleet of distinct failing objects gives). Once every
notification is delivered, the size of each table with its indexes and TOAST is read from the
catalogue and divided by its rows, and the database's growth by the events: the bytes each event
costs until `outbox.retention` deletes it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from aiohttp import web

from bench.bridge import flux_event, send_exactly, spawn, stop, write_config
from plumbing.http_server import HttpServer

EVENTS = int(os.environ.get("BENCH_PGSIZE_EVENTS", "10000"))

SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public'
ORDER BY pg_total_relation_size(c.oid) DESC
"""


@dataclass(frozen=True)
class Sizes:
    accepted: int
    empty: int  # bytes of the database with the schema only
    full: int  # bytes once every event is delivered
    tables: list[tuple[str, int, int]]  # (table, bytes with indexes and TOAST, rows)


def _rows(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        return int(row[0]) if row else 0


async def run(cwd: Path) -> Sizes:
    from tests.postgres import running_postgres

    delivered = [0]
    all_in = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        doc = await request.json()
        delivered[0] += len(doc["data"]["events"])
        if delivered[0] >= EVENTS:
            all_in.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    destination = HttpServer(app, "127.0.0.1", 0, name="bench destination")
    await destination.start()
    dest_port = destination.port
    try:
        with (
            running_postgres(durable=True) as server,
            tempfile.TemporaryDirectory(prefix="fluxwatch-bench-") as tmp,
        ):
            dsn = server.dsn(server.new_database())
            cfg = write_config(
                Path(tmp),
                dest_port=dest_port,
                group_wait="0s",
                synchronous="full",
                postgres_dsn=dsn,
            )
            proc, port = spawn(["-m", "fluxwatch", "bridge", "--config", str(cfg)], cwd)
            try:
                with psycopg.connect(dsn) as conn:
                    row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                    empty = int(row[0]) if row else 0
                accepted = await send_exactly(
                    port, "/flux/bench", [flux_event(i) for i in range(EVENTS)]
                )
                await asyncio.wait_for(all_in.wait(), 300)
                # The last deliveries' records commit after their 2xx: wait for the table.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with psycopg.connect(dsn) as conn:
                        row = conn.execute(
                            "SELECT count(*) FROM notifications WHERE status <> 'delivered'"
                        ).fetchone()
                    if row and row[0] == 0:
                        break
                    await asyncio.sleep(0.2)
            finally:
                stop(proc)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("ANALYZE")  # reltuples for the row counts below
                tables = [(str(n), int(s), int(r)) for n, s, r in conn.execute(SIZES).fetchall()]
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
                full = int(row[0]) if row else 0
            counted = [(name, size, _rows(dsn, name)) for name, size, _ in tables]
    finally:
        await destination.stop()
    return Sizes(accepted, empty, full, counted)


def main() -> None:
    cwd = Path(__file__).resolve().parent.parent
    r = asyncio.run(run(cwd))
    accepted = r.accepted
    growth = r.full - r.empty
    print(f"PostgreSQL outbox after {accepted} events delivered as {accepted} notifications:")
    for name, size, rows in r.tables:
        if size < 64 * 1024 and rows < 10:
            continue  # schema version, meta, empty tables
        per_row = f"{size / rows:7.0f} B/row" if rows else "         -"
        print(f"  {name:<16} {rows:>8} rows  {size / 2**20:7.2f} MiB  {per_row} (with indexes)")
    print(
        f"  database growth: {growth / 2**20:.2f} MiB, {growth / max(1, accepted):.0f} B per event "
        "(event, its delivery, its notification, de-dup state; until outbox.retention)"
    )


if __name__ == "__main__":
    main()
