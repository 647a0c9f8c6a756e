"""Simulator figures: build and serve f500, list it, fan watch events out, sustain churn.

The watch clients run in a separate process (``python -m bench.simulator client ...``) so the
server's two-core budget is measured, not the client's JSON handling: they count lines only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import ssl
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp

from simulator.scenario import preset
from simulator.server import SimulatorServer

CHURN_TARGET = 200.0  # status changes per second the issue asks for
FANOUT_WATCHERS = 200
FANOUT_CHANGES = 2_000
CHURN_SECONDS = 20.0
CHURN_SCALE = 6.0  # f500 makes ~65 changes per simulated second: x6 is well above target
CHURN_MAX_SCALE = 60.0  # far beyond what the server can keep up with, to find its ceiling


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- client process ------------------------------------------------------------------------


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    """Open every watch in ``spec['urls']``, count event lines until ``expect`` arrived in
    total or ``seconds`` passed; report counts and the time of the last line."""
    context = ssl.create_default_context(cafile=spec["ca"])
    counts = [0] * len(spec["urls"])
    bytes_in = 0
    last = 0.0
    done = asyncio.Event()
    ready = 0
    connector = aiohttp.TCPConnector(limit=0, ssl=context)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)

    async def watch(i: int, url: str, token: str, session: aiohttp.ClientSession) -> None:
        nonlocal bytes_in, last, ready
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(url, headers=headers) as response:
            ready += 1
            if ready == len(spec["urls"]):
                print("ready", flush=True)
            async for line in response.content:
                if b'"BOOKMARK"' in line:
                    continue
                counts[i] += 1
                bytes_in += len(line)
                last = time.monotonic()
                if spec["expect"] and sum(counts) >= spec["expect"]:
                    done.set()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [
            asyncio.create_task(watch(i, url, token, session))
            for i, (url, token) in enumerate(spec["urls"])
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), spec["seconds"])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"events": sum(counts), "bytes": bytes_in, "last": last}


def client_main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    print(json.dumps(asyncio.run(_client(spec))), flush=True)


async def start_clients(spec: dict[str, Any], workdir: Path) -> asyncio.subprocess.Process:
    path = workdir / f"client-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.simulator",
        "client",
        str(path),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if line.strip() != b"ready":
        raise RuntimeError(f"watch clients failed to start: {line!r}")
    return proc


async def finish_clients(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    out, _ = await asyncio.wait_for(proc.communicate(), 180)
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def watch_url(sim: SimulatorServer, cluster: str, path: str, since: int | None) -> str:
    rv = f"&resourceVersion={since}" if since is not None else ""
    return f"{sim.base_url}/clusters/{cluster}/apis/{path}?watch=true&allowWatchBookmarks=true{rv}"


# --- figures -------------------------------------------------------------------------------


def bench_memory_per_object() -> float:
    """Traced Python memory per object, on the 5,000-object ``fleet`` (tracemalloc slows a
    build about fourfold, so the f500 build below is timed without it)."""
    tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="fluxwatch-bench-") as state_dir:
        sim = SimulatorServer(preset("fleet", seed=1), state_dir=Path(state_dir))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_object = peak / sim.engine.object_count / 1024
    print(f"memory: fleet ({sim.engine.object_count} objects) traced peak {peak / 2**20:.1f} MiB")
    print(f"  = {per_object:.1f} KiB per object, engine state + metadata + encoded spec/status")
    del sim
    return per_object


async def bench_build(workdir: Path) -> SimulatorServer:
    rss_before = rss_mb()
    started = time.perf_counter()
    sim = SimulatorServer(preset("f500", seed=1), state_dir=workdir / "f500", watch_history=200)
    built = time.perf_counter()
    await sim.start()
    served = time.perf_counter()
    objects = sim.engine.object_count
    print(f"f500: {len(sim.cluster_names)} clusters, {objects} objects")
    print(f"  build {built - started:6.2f} s, TLS + listen {served - built:5.2f} s")
    print(f"  peak RSS {rss_mb():7.1f} MB (process before: {rss_before:.1f} MB)")
    return sim


async def bench_list(sim: SimulatorServer) -> None:
    context = ssl.create_default_context(cafile=str(sim.ca_path))
    connector = aiohttp.TCPConnector(limit=16, ssl=context)
    paths = [
        "kustomize.toolkit.fluxcd.io/v1/kustomizations",
        "helm.toolkit.fluxcd.io/v2/helmreleases",
    ]
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(cluster: str, path: str) -> None:
            if sim.cluster(cluster).profile != "current":
                path = path.replace("/v1/", "/v1beta2/").replace("/v2/", "/v2beta2/")
            url = f"{sim.base_url}/clusters/{cluster}/apis/{path}"
            headers = {"Authorization": f"Bearer {sim.tokens[cluster]}"}
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body[:200]

        started = time.perf_counter()
        await asyncio.gather(*(one(c, p) for c in sim.cluster_names for p in paths))
        elapsed = time.perf_counter() - started
    items = sum(
        len(store.objects.get(plural, {}))
        for store in sim.stores.values()
        for plural in ("kustomizations", "helmreleases")
    )
    requests = len(sim.cluster_names) * len(paths)
    print(
        f"list: {requests} lists ({items} objects) over HTTPS in {elapsed:.2f} s = "
        f"{requests / elapsed:.0f} lists/s, {items / elapsed:.0f} objects/s"
    )


async def bench_fanout(sim: SimulatorServer, workdir: Path, watchers: int) -> float:
    """Events per second delivered when ``watchers`` watch one cluster's Kustomizations and
    its objects change as fast as the server can encode and push."""
    cluster = sim.cluster_names[0]
    store = sim.stores[cluster]
    since = store.resource_version
    url = watch_url(sim, cluster, "kustomize.toolkit.fluxcd.io/v1/kustomizations", since)
    token = sim.tokens[cluster]
    spec = {
        "ca": str(sim.ca_path),
        "urls": [(url, token)] * watchers,
        "expect": FANOUT_CHANGES * watchers,
        "seconds": 120,
    }
    proc = await start_clients(spec, workdir)
    await asyncio.sleep(0.2)
    objs = [o for o in sim.engine.objs[cluster].values() if o.kind == "Kustomization"]
    started = time.monotonic()
    for i in range(FANOUT_CHANGES):
        obj = objs[i % len(objs)]
        obj.last_duration = 1.0 + i / 1000.0  # a different status each time
        obj.attempted_rev = f"bench-{i}"
        sim.engine.commit(obj)
        if i % 50 == 0:
            await asyncio.sleep(0)
    result = await finish_clients(proc)
    elapsed = max(result["last"] - started, 1e-9)
    rate: float = result["events"] / elapsed
    print(
        f"fan-out: {watchers:4d} watchers x {FANOUT_CHANGES} changes: {result['events']} events "
        f"in {elapsed:.2f} s = {rate:,.0f} events/s ({result['bytes'] / elapsed / 2**20:.1f} MiB/s)"
    )
    return rate


async def bench_churn(sim: SimulatorServer, workdir: Path, scale: float, seconds: float) -> float:
    """Sustained engine churn on f500 while one watch per cluster and kind (Kustomization,
    HelmRelease) streams it to a separate process."""
    urls = []
    for cluster in sim.cluster_names:
        legacy = sim.cluster(cluster).profile != "current"
        for path in (
            f"kustomize.toolkit.fluxcd.io/{'v1beta2' if legacy else 'v1'}/kustomizations",
            f"helm.toolkit.fluxcd.io/{'v2beta2' if legacy else 'v2'}/helmreleases",
        ):
            urls.append(
                (
                    watch_url(sim, cluster, path, sim.stores[cluster].resource_version),
                    sim.tokens[cluster],
                )
            )
    spec = {"ca": str(sim.ca_path), "urls": urls, "expect": 0, "seconds": seconds + 5}
    proc = await start_clients(spec, workdir)
    loop = asyncio.get_running_loop()
    changes_before = sim.engine.changes
    sim_before = sim.engine.now
    started = loop.time()
    sim.start_clock(scale)
    await asyncio.sleep(seconds)
    await sim.stop_clock()
    elapsed = loop.time() - started
    changes = sim.engine.changes - changes_before
    simulated = sim.engine.now - sim_before
    result = await finish_clients(proc)
    rate = changes / elapsed
    print(
        f"churn: f500 at time x{scale:g} with {len(urls)} open watches for {elapsed:.0f} s: "
        f"{changes} status changes = {rate:.0f}/s (target {CHURN_TARGET:.0f}/s, "
        f"ratio {rate / CHURN_TARGET:.2f}); simulated {simulated:.0f} s of "
        f"{scale * elapsed:.0f} s asked; {result['events']} Kustomization/HelmRelease "
        f"watch events delivered ({result['events'] / elapsed:.0f}/s)"
    )
    return rate


async def _main() -> None:
    with tempfile.TemporaryDirectory(prefix="fluxwatch-bench-") as tmp:
        workdir = Path(tmp)
        bench_memory_per_object()
        sim = await bench_build(workdir)
        try:
            await bench_list(sim)
            base = await bench_fanout(sim, workdir, 1)
            wide = await bench_fanout(sim, workdir, FANOUT_WATCHERS)
            print(
                f"fan-out ratio: {wide / base:.1f}x the 1-watcher rate ({FANOUT_WATCHERS} watchers)"
            )
            await bench_churn(sim, workdir, CHURN_SCALE, CHURN_SECONDS)
            top = await bench_churn(sim, workdir, CHURN_MAX_SCALE, 10.0)
            print(f"churn headroom: {top:.0f} changes/s = {top / CHURN_TARGET:.1f}x the target")
        finally:
            await sim.stop()


def main() -> None:
    asyncio.run(_main())


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        client_main(sys.argv[2:])
    else:
        main()
