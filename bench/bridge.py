"""Bridge benchmark: durable intake rate, intake-to-delivery latency, and the bare-aiohttp ceiling.

The load is closed-loop from 128 keep-alive connections (BENCH_BRIDGE_CONCURRENCY): a durable
202 waits for a group commit, so throughput needs concurrent senders, as a fleet of clusters
provides; the bare ceiling is the same at 64 or 128 connections.

Servers run in their own processes (``python -m bench.bridge serve-bare|...``); this process is
the load generator (a minimal keep-alive HTTP/1.1 client on raw asyncio streams, cheaper than
any client library, so the server is what saturates) and, for the latency phase, the fast
destination, so send and receive times come from one clock.

Figures printed:
- ceiling: a bare aiohttp handler answering 202 without storing anything;
- durable intake: events/s acknowledged by the bridge (each 202 is sent after COMMIT), with the
  ratio to the ceiling (target >= 0.5);
- latency p50/p99 from POST to arrival at a local destination at a fixed rate (target p99 < 0.5 s);
- memory of a backlog: the bridge's RSS idle and with BENCH_BRIDGE_BACKLOG (9,000) undelivered
  notifications for a destination that is down (pending work waits on disk, a bounded window
  in memory, so the growth per notification stays small).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

DURATION = float(os.environ.get("BENCH_BRIDGE_SECONDS", "6"))
CONCURRENCY = int(os.environ.get("BENCH_BRIDGE_CONCURRENCY", "128"))
LATENCY_RATE = float(os.environ.get("BENCH_BRIDGE_LATENCY_RATE", "1000"))
LATENCY_SECONDS = float(os.environ.get("BENCH_BRIDGE_LATENCY_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_BRIDGE_ROUNDS", "3"))
BACKLOG = int(os.environ.get("BENCH_BRIDGE_BACKLOG", "9000"))


def flux_event(i: int) -> bytes:
    doc = {
        "involvedObject": {
            "kind": "Kustomization",
            "namespace": f"team-{i % 40}",
            "name": f"app-{i}",
            "uid": f"uid-{i}",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "resourceVersion": "532126",
        },
        "severity": "error",
        "timestamp": "2026-08-16T10:26:43Z",
        "message": "Health check failed after 2m0s: timeout waiting for: [Deployment/apps/podinfo]",
        "reason": "HealthCheckFailed",
        "metadata": {"revision": "main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
    }
    return json.dumps(doc).encode()


def request_bytes(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _one_connection(
    port: int, path: str, bodies: list[bytes], deadline: float, counter: list[int], offset: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            writer.write(request_bytes(path, bodies[i % len(bodies)]))
            i += CONCURRENCY
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if head[9:10] == b"2":
                counter[0] += 1
            else:
                counter[1] += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def warm_up(port: int, path: str, bodies: list[bytes]) -> None:
    """Half a second of load first, so connection setup and imports are not counted."""
    warm = time.perf_counter() + 0.5
    await asyncio.gather(*(_one_connection(port, path, bodies, warm, [0, 0], c) for c in range(8)))


async def drive(port: int, path: str, bodies: list[bytes], seconds: float) -> tuple[float, int]:
    """Closed-loop load: CONCURRENCY keep-alive connections, each one request at a time."""
    counter = [0, 0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_one_connection(port, path, bodies, deadline, counter, c) for c in range(CONCURRENCY))
    )
    elapsed = time.perf_counter() - start
    return counter[0] / elapsed, counter[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), to report CPU per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    proc: subprocess.Popen[str], port: int, path: str, bodies: list[bytes]
) -> dict[str, float]:
    await warm_up(port, path, bodies)
    before = cpu_seconds(proc.pid)  # after the warm-up: its CPU is not divided by timed events
    rate, errors = await drive(port, path, bodies, DURATION)
    cpu = cpu_seconds(proc.pid) - before
    return {"rate": rate, "errors": errors, "cpu_us": cpu / max(1.0, rate * DURATION) * 1e6}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes
) -> bool:
    """One request on a keep-alive connection; True when it was answered 2xx."""
    writer.write(request_bytes(path, body))
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return head[9:10] == b"2"


async def send_exactly(port: int, path: str, bodies: list[bytes], connections: int = 16) -> int:
    """POST every body once over ``connections`` keep-alive connections; returns the 2xx count."""
    accepted = [0]

    async def one(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in bodies[offset::connections]:
                ok = await exchange(reader, writer, path, body)
                accepted[0] += ok  # not `+= await`: that would read the count before waiting
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(one(c) for c in range(connections)))
    return accepted[0]


async def backlog_phase(cwd: Path, tmp: Path) -> dict[str, float]:
    """RSS with BACKLOG notifications waiting for a destination that refuses connections."""
    import sqlite3

    cfg = write_config(tmp / "backlog", dest_port=9, group_wait="0s", synchronous="normal")
    proc, port = spawn(["-m", "fluxwatch", "bridge", "--config", str(cfg)], cwd)
    try:
        await send_exactly(port, "/flux/bench", [flux_event(i) for i in range(200)])
        idle = rss_mib(proc.pid)  # started, imports and first requests done, nothing waiting
        accepted = await send_exactly(
            port, "/flux/bench", [flux_event(1_000_000 + i) for i in range(BACKLOG)]
        )
        db = tmp / "backlog" / "state" / "outbox.sqlite3"
        deadline = time.monotonic() + 60
        pending = 0
        while time.monotonic() < deadline:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            try:
                pending = conn.execute(
                    "SELECT count(*) FROM notifications WHERE status = 'pending'"
                ).fetchone()[0]
            finally:
                conn.close()
            if pending >= BACKLOG:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # a maintenance pass and a dispatcher pass over the backlog
        loaded = rss_mib(proc.pid)
    finally:
        stop(proc)
    return {"idle": idle, "loaded": loaded, "pending": pending, "accepted": accepted}


def spawn(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if ":" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(line.strip().rsplit(":", 1)[1])


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_bare() -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202, text="{}", content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/flux", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"bare listening on 127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def write_config(
    dir_: Path, *, dest_port: int, group_wait: str, synchronous: str, postgres_dsn: str = ""
) -> Path:
    config: dict[str, Any] = {
        "bridge": {
            "listen": "127.0.0.1:0",
            "state_dir": str(dir_ / "state"),
            "outbox": {"synchronous": synchronous, "prune_interval": "1h"},
            "route": {
                "destinations": ["sink"],
                "group_by": ["..."],
                "group_wait": group_wait,
                "group_interval": "1s",
            },
            "destinations": {
                "sink": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{dest_port}/hook",
                    "max_in_flight": 32,
                }
            },
        }
    }
    dir_.mkdir(parents=True, exist_ok=True)
    if postgres_dsn:
        (dir_ / "outbox.dsn").write_text(postgres_dsn)
        config["bridge"]["outbox"]["postgres"] = {"dsn_file": str(dir_ / "outbox.dsn")}
    path = dir_ / "fluxwatch.yaml"
    path.write_text(json.dumps(config))
    return path


class LatencySink:
    """The destination of a latency run, in the load generator's process so that send and
    arrival times come from one clock: each event's latency from ``sent[name]`` to arrival."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.all_in = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _hook(self, request: web.Request) -> web.Response:
        doc = await request.json()
        now = time.perf_counter()
        for event in doc["data"]["events"]:
            t0 = self.sent.pop(event["name"], None)  # a redelivery is not a second latency
            if t0 is not None:
                self.latencies.append(now - t0)
        if len(self.latencies) >= self.total:
            self.all_in.set()
        return web.Response(status=204)

    async def start(self) -> int:
        """Starts listening; returns the port."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def wait_all_in(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_in.wait(), within)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def summary(self) -> dict[str, float]:
        latencies = sorted(self.latencies)
        return {
            "delivered": len(latencies),
            "sent": self.total,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        }


async def latency_phase(cwd: Path, tmp: Path, synchronous: str) -> dict[str, float]:
    total = int(LATENCY_RATE * LATENCY_SECONDS)
    sink = LatencySink(total)
    dest_port = await sink.start()
    cfg = write_config(tmp / "lat", dest_port=dest_port, group_wait="0s", synchronous=synchronous)
    proc, port = spawn(["-m", "fluxwatch", "bridge", "--config", str(cfg)], cwd)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter()
        for i in range(total):
            target = start + i / LATENCY_RATE
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = flux_event(10_000_000 + i)
            sink.sent[f"app-{10_000_000 + i}"] = time.perf_counter()
            await exchange(reader, writer, "/flux/bench", body)
        writer.close()
        await writer.wait_closed()
        await sink.wait_all_in(10)
    finally:
        stop(proc)
        await sink.stop()
    return sink.summary()


BARE_SERVER = ["-m", "bench.bridge", "serve-bare"]


def bridge_process(config: Path) -> list[str]:
    return ["-m", "fluxwatch", "bridge", "--config", str(config)]


async def measure_process(
    cwd: Path, args: list[str], path: str, bodies: list[bytes]
) -> dict[str, float]:
    """Start a server process, measure its intake (``measure``), stop it."""
    proc, port = spawn(args, cwd)
    try:
        return await measure(proc, port, path, bodies)
    finally:
        stop(proc)


class BestRounds(dict[str, dict[str, Any]]):
    """The best round of each server: load from other processes on the machine only slows."""

    def keep(self, name: str, result: dict[str, Any]) -> None:
        if name not in self or result["rate"] > self[name]["rate"]:
            self[name] = result


async def postgres_phase(
    cwd: Path, tmp: Path, bodies: list[bytes], keep: Callable[[str, dict[str, Any]], None]
) -> None:
    """One bridge on a local PostgreSQL 15 (fsync on, like synchronous=full), a fresh database
    per round: the durable intake of the shared store."""
    from tests.postgres import running_postgres

    with running_postgres(durable=True) as server:
        for round_ in range(ROUNDS):
            dsn = server.dsn(server.new_database())
            cfg = write_config(
                tmp / f"intake-pg-{round_}",
                dest_port=9,
                group_wait="1h",
                synchronous="full",
                postgres_dsn=dsn,
            )
            keep("postgres", await measure_process(cwd, bridge_process(cfg), "/flux/bench", bodies))


async def run(cwd: Path) -> dict[str, Any]:
    bodies = [flux_event(i) for i in range(20_000)]
    best = BestRounds()
    keep = best.keep
    with tempfile.TemporaryDirectory(prefix="fluxwatch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # Rounds alternate the servers so that load from other processes on the machine hits
        # them alike; the best round of each is reported.
        for round_ in range(ROUNDS):
            keep("ceiling", await measure_process(cwd, BARE_SERVER, "/flux", bodies))
            for sync in ("full", "normal"):
                # group_wait 1h: nothing is delivered during the run: this is intake alone
                cfg = write_config(
                    tmp / f"intake-{sync}-{round_}", dest_port=9, group_wait="1h", synchronous=sync
                )
                keep(sync, await measure_process(cwd, bridge_process(cfg), "/flux/bench", bodies))
        await postgres_phase(cwd, tmp, bodies, keep)
        latency = await latency_phase(cwd, tmp, "full")
        backlog = await backlog_phase(cwd, tmp)
    return {"best": best, "latency": latency, "backlog": backlog}


def main() -> None:
    cwd = Path(__file__).resolve().parent.parent
    r = asyncio.run(run(cwd))
    best = r["best"]
    ceiling = best["ceiling"]
    print(
        f"ceiling (bare aiohttp 202, no storage):  {ceiling['rate']:8.0f} req/s     "
        f"{ceiling['cpu_us']:6.1f} us CPU/request"
    )
    for sync in ("full", "normal"):
        b = best[sync]
        print(
            f"durable intake (synchronous={sync:<6}):  {b['rate']:8.0f} events/s  "
            f"{b['cpu_us']:6.1f} us CPU/event  ratio {b['rate'] / ceiling['rate']:.2f} "
            f"(target >= 0.50); non-2xx: {b['errors']:.0f}"
        )
    b = best["postgres"]
    print(
        f"durable intake (PostgreSQL, 1 bridge): {b['rate']:8.0f} events/s  "
        f"{b['cpu_us']:6.1f} us CPU/event  ratio {b['rate'] / ceiling['rate']:.2f} "
        f"(CPU of the bridge process only; the server's is extra); non-2xx: {b['errors']:.0f}"
    )
    lat = r["latency"]
    print(
        f"intake->delivery at {LATENCY_RATE:.0f} events/s: p50 {lat['p50'] * 1000:.1f} ms, "
        f"p99 {lat['p99'] * 1000:.1f} ms (target p99 < 500 ms); "
        f"delivered {lat['delivered']}/{lat['sent']}"
    )
    bl = r["backlog"]
    growth = bl["loaded"] - bl["idle"]
    print(
        f"backlog of {bl['pending']:.0f} undelivered notifications (destination down): RSS "
        f"{bl['idle']:.1f} MiB idle -> {bl['loaded']:.1f} MiB (+{growth:.1f} MiB, "
        f"{growth * 1024 / max(1.0, bl['pending']):.2f} KiB per notification; while every pending "
        "one was held in memory: 5.5 KiB each, 61 -> 111 MiB for 9,200)"
    )
    print(
        f"load: {CONCURRENCY} keep-alive connections, {DURATION:g}s per server, best of "
        f"{ROUNDS} alternating rounds; 2 cores shared with the load generator"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["serve-bare"]:
        serve_bare()
    else:
        main()
