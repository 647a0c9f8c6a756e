"""Several bridge replicas on one PostgreSQL: does adding replicas add intake, and what limits it?

Measured in one run, on the same machine, against the same load generator (bench/bridge.py's
closed-loop keep-alive client, CONCURRENCY connections spread round-robin over the replicas):

- ceiling: a bare aiohttp handler answering 202 without storing anything (one process);
- SQLite: one bridge process, the embedded outbox, ``synchronous=full``;
- PostgreSQL: 1, 2 and 4 bridge processes (``FLUXWATCH_REPLICA_ID`` r1..rN, one config) on one
  local PostgreSQL 15 with fsync on, a fresh database each; every 202 is sent after COMMIT;
- intake -> delivery latency at BENCH_HA_LATENCY_RATE (1,000) events/s posted alternately to two
  replicas, to a destination in this process (one clock for send and arrival): the replica that
  holds the destination delivers what either replica stored.

For each PostgreSQL run it prints the CPU the bridge processes, the PostgreSQL processes and
this load generator used (user + system from /proc, in cores), and the machine's busy share from
/proc/stat, then says which limit was hit: the cores (everything on the machine together near
its core count) or the database (cores left idle while intake waits on commits and locks).

Environment: ``BENCH_BRIDGE_SECONDS`` (6, as bench/bridge.py), ``BENCH_HA_ROUNDS`` (1),
``BENCH_HA_REPLICAS`` ("1,2,4"), ``BENCH_HA_LATENCY_RATE`` (1000), ``BENCH_HA_LATENCY_SECONDS``
(5), ``BENCH_HA_LATENCY_REPLICAS`` (2).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bridge import (
    BARE_SERVER,
    CONCURRENCY,
    DURATION,
    BestRounds,
    LatencySink,
    _one_connection,
    bridge_process,
    cpu_seconds,
    exchange,
    flux_event,
    measure_process,
    spawn,
    stop,
    write_config,
)

ROUNDS = int(os.environ.get("BENCH_HA_ROUNDS", "1"))
REPLICA_COUNTS = tuple(int(n) for n in os.environ.get("BENCH_HA_REPLICAS", "1,2,4").split(","))
LATENCY_RATE = float(os.environ.get("BENCH_HA_LATENCY_RATE", "1000"))
LATENCY_SECONDS = float(os.environ.get("BENCH_HA_LATENCY_SECONDS", "5"))
LATENCY_REPLICAS = int(os.environ.get("BENCH_HA_LATENCY_REPLICAS", "2"))
LATENCY_TARGET = 0.5
LATENCY_CONNECTIONS = 64
CORES = os.cpu_count() or 1


@dataclass
class CpuUse:
    """Cores used over a run (CPU seconds / wall seconds) by each party."""

    bridges: float
    postgres: float
    load: float
    machine_busy: float  # share of all cores busy, whoever used them (/proc/stat)
    wall: float  # seconds measured

    def line(self, events: float, load: str = "load generator") -> str:
        """Cores used, CPU per event (steadier than rates when other work shares the cores),
        and the limit that was hit."""

        def per_event(cores: float) -> float:
            return cores * self.wall / max(1.0, events) * 1e6

        return (
            f"    CPU: bridges {self.bridges:.2f} cores ({per_event(self.bridges):.0f} us/event), "
            f"PostgreSQL {self.postgres:.2f} ({per_event(self.postgres):.0f} us/event), "
            f"{load} {self.load:.2f}; machine {self.machine_busy:.0%} busy "
            f"-> limit: {self.limit()}"
        )

    @property
    def ours(self) -> float:
        return self.bridges + self.postgres + self.load

    def limit(self) -> str:
        if self.machine_busy >= 0.9:
            heaviest = "the bridges" if self.bridges >= self.postgres else "PostgreSQL"
            others = max(0.0, self.machine_busy * CORES - self.ours)
            return (
                f"CPU: the {CORES} cores were {self.machine_busy:.0%} busy "
                f"({heaviest} used most; other processes {others:.2f} cores)"
            )
        return (
            f"the database: {(1 - self.machine_busy) * CORES:.2f} cores idle while intake "
            "waited on commits and row locks"
        )


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    children.append(int(entry.name))
    return children


def _cpu(pids: list[int]) -> dict[int, float]:
    used = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            used[pid] = cpu_seconds(pid)
    return used


@contextlib.contextmanager
def cpu_use(bridge_pids: list[int], postmaster: int, into: list[CpuUse]) -> Iterator[None]:
    """Measures the block: bridges, PostgreSQL (the postmaster and its backends; none when
    ``postmaster`` is 0) and this process, plus the whole machine's busy share."""
    pg_pids = [postmaster, *_children_of(postmaster)] if postmaster else []
    pg_before = _cpu(pg_pids)
    bridges_before = sum(_cpu(bridge_pids).values())
    load_before = cpu_seconds(os.getpid())
    busy_before, total_before = _machine_ticks()
    start = time.perf_counter()
    yield
    wall = time.perf_counter() - start
    pg_after = _cpu([postmaster, *_children_of(postmaster)] if postmaster else [])
    pg = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
    busy, total = _machine_ticks()
    into.append(
        CpuUse(
            bridges=(sum(_cpu(bridge_pids).values()) - bridges_before) / wall,
            postgres=pg / wall,
            load=(cpu_seconds(os.getpid()) - load_before) / wall,
            machine_busy=(busy - busy_before) / max(1, total - total_before),
            wall=wall,
        )
    )


def spawn_replicas(cfg: Path, cwd: Path, count: int) -> list[tuple[subprocess.Popen[str], int]]:
    started = []
    saved = os.environ.get("FLUXWATCH_REPLICA_ID")
    try:
        for i in range(1, count + 1):
            os.environ["FLUXWATCH_REPLICA_ID"] = f"r{i}"
            started.append(spawn(bridge_process(cfg), cwd))
    except BaseException:
        for proc, _ in started:
            stop(proc)
        raise
    finally:
        if saved is None:
            os.environ.pop("FLUXWATCH_REPLICA_ID", None)
        else:
            os.environ["FLUXWATCH_REPLICA_ID"] = saved
    return started


async def drive_fleet(ports: list[int], bodies: list[bytes], seconds: float) -> tuple[float, int]:
    """Closed loop as in bench/bridge.py, the connections spread round-robin over ``ports``."""
    counter = [0, 0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(
            _one_connection(ports[c % len(ports)], "/flux/bench", bodies, deadline, counter, c)
            for c in range(CONCURRENCY)
        )
    )
    return counter[0] / (time.perf_counter() - start), counter[1]


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


async def intake_phase(
    cwd: Path, tmp: Path, server: Any, count: int, bodies: list[bytes], round_: int
) -> dict[str, Any]:
    dsn = server.dsn(server.new_database())
    cfg = write_config(
        tmp / f"ha-{count}-{round_}",
        dest_port=9,
        group_wait="1h",  # nothing is delivered during the run: intake alone
        synchronous="full",
        postgres_dsn=dsn,
    )
    replicas = spawn_replicas(cfg, cwd, count)
    ports = [port for _, port in replicas]
    cpu: list[CpuUse] = []
    try:
        await drive_fleet(ports, bodies, 0.5)  # warm-up: connections, imports, first commits
        with cpu_use([p.pid for p, _ in replicas], postmaster_pid(server.data_dir), cpu):
            rate, errors = await drive_fleet(ports, bodies, DURATION)
    finally:
        for proc, _ in replicas:
            stop(proc)
    return {"rate": rate, "errors": errors, "cpu": cpu[0]}


async def latency_phase(
    cwd: Path, tmp: Path, count: int, dsn: str = "", postmaster: int = 0
) -> dict[str, Any]:
    """Events at LATENCY_RATE/s, round-robin to ``count`` replicas on PostgreSQL ``dsn`` (or one
    process on SQLite when ``dsn`` is empty); latency from when each event was due to its
    arrival at the sink."""
    total = int(LATENCY_RATE * LATENCY_SECONDS)
    sink = LatencySink(total)
    dest_port = await sink.start()
    cfg = write_config(
        tmp / f"latency-{count}-{bool(dsn)}",
        dest_port=dest_port,
        group_wait="0s",
        synchronous="full",
        postgres_dsn=dsn,
    )
    replicas = spawn_replicas(cfg, cwd, count)
    acked = [0]
    cpu: list[CpuUse] = []
    queues: list[asyncio.Queue[int | None]] = [asyncio.Queue() for _ in replicas]

    async def worker(port: int, queue: asyncio.Queue[int | None]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (i := await queue.get()) is not None:
                body = flux_event(20_000_000 + i)
                ok = await exchange(reader, writer, "/flux/bench", body)
                acked[0] += ok
        finally:
            writer.close()
            await writer.wait_closed()

    try:
        # Enough connections that a slow commit delays one sender, not the schedule: at
        # 1,000 events/s and 30 ms per acknowledgement on a busy machine, 30 are in use.
        ports = [p for _, p in replicas]
        workers = [
            asyncio.create_task(worker(ports[n % len(ports)], queues[n % len(ports)]))
            for n in range(LATENCY_CONNECTIONS)
        ]
        with cpu_use([p.pid for p, _ in replicas], postmaster, cpu):
            start = time.perf_counter()
            for i in range(total):
                delay = start + i / LATENCY_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                # timed from when the event is due, not from when a connection was free
                sink.sent[f"app-{20_000_000 + i}"] = time.perf_counter()
                queues[i % len(queues)].put_nowait(i)
            for n in range(len(workers)):
                queues[n % len(queues)].put_nowait(None)
            await asyncio.gather(*workers)
            posting = time.perf_counter() - start
            await sink.wait_all_in(15)
    finally:
        for proc, _ in replicas:
            stop(proc)
        await sink.stop()
    return {**sink.summary(), "acked": acked[0], "rate": total / posting, "cpu": cpu[0]}


async def run(cwd: Path) -> dict[str, Any]:
    from tests.postgres import running_postgres

    bodies = [flux_event(i) for i in range(20_000)]
    best = BestRounds()
    with tempfile.TemporaryDirectory(prefix="fluxwatch-bench-ha-") as tmp_name:
        tmp = Path(tmp_name)
        with running_postgres(durable=True) as server:
            for round_ in range(ROUNDS):
                ceiling = await measure_process(cwd, BARE_SERVER, "/flux", bodies)
                best.keep("ceiling", ceiling)
                cfg = write_config(
                    tmp / f"sqlite-{round_}", dest_port=9, group_wait="1h", synchronous="full"
                )
                sqlite = await measure_process(cwd, bridge_process(cfg), "/flux/bench", bodies)
                best.keep("sqlite", sqlite)
                for count in REPLICA_COUNTS:
                    result = await intake_phase(cwd, tmp, server, count, bodies, round_)
                    best.keep(f"pg{count}", result)
            sqlite_latency = await latency_phase(cwd, tmp, 1)
            dsn = server.dsn(server.new_database())
            postmaster = postmaster_pid(server.data_dir)
            latency = await latency_phase(cwd, tmp, LATENCY_REPLICAS, dsn, postmaster)
    return {"best": best, "latency": latency, "sqlite_latency": sqlite_latency}


def main() -> None:
    cwd = Path(__file__).resolve().parent.parent
    r = asyncio.run(run(cwd))
    best = r["best"]
    ceiling = best["ceiling"]["rate"]
    sqlite = best["sqlite"]["rate"]
    print(f"ceiling (bare aiohttp 202, no storage, 1 process): {ceiling:8.0f} req/s")
    print(
        f"durable intake, SQLite, 1 process:                 {sqlite:8.0f} events/s  "
        f"ratio to ceiling {sqlite / ceiling:.2f}; bridge CPU {best['sqlite']['cpu_us']:.0f} "
        "us/event"
    )
    single = best.get("pg1", {}).get("rate", float("nan"))
    for count in REPLICA_COUNTS:
        b = best[f"pg{count}"]
        cpu: CpuUse = b["cpu"]
        print(
            f"durable intake, PostgreSQL, {count} replica{'s' if count > 1 else ' '}:"
            f"            {b['rate']:8.0f} events/s  ratio to ceiling {b['rate'] / ceiling:.2f}, "
            f"to SQLite {b['rate'] / sqlite:.2f}, to 1 replica {b['rate'] / single:.2f}; "
            f"non-2xx: {b['errors']:.0f}"
        )
        print(cpu.line(b["rate"] * cpu.wall))
    for name, lat in (
        ("SQLite, 1 process", r["sqlite_latency"]),
        (f"PostgreSQL, {LATENCY_REPLICAS} replicas", r["latency"]),
    ):
        verdict = "met" if lat["p99"] < LATENCY_TARGET else "NOT met"
        print(
            f"intake->delivery at {LATENCY_RATE:.0f} events/s offered, {name}: "
            f"p50 {lat['p50'] * 1000:.1f} ms, p99 {lat['p99'] * 1000:.1f} ms "
            f"(target p99 < {LATENCY_TARGET * 1000:.0f} ms: {verdict}); "
            f"{lat['rate']:.0f} events/s answered, {lat['acked']}/{lat['sent']} acknowledged, "
            f"{lat['delivered']} delivered"
        )
        print(lat["cpu"].line(lat["sent"], load="load generator and sink"))
    print(
        f"load: {CONCURRENCY} keep-alive connections over the replicas, {DURATION:g}s per run, "
        f"best of {ROUNDS}; PostgreSQL 15 with fsync on; {CORES} cores shared by everything"
    )


if __name__ == "__main__":
    main()
