"""The exporter's HTTP endpoints: /metrics, /healthz, /readyz and a short status page at /.

``build_app`` is what ``exporter.app`` mounts; it knows the store and the extra
prometheus-client registries (the watch layer's health counters) and nothing of Kubernetes.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CollectorRegistry

from catalogue.exporter import STATUSES
from exporter import exposition
from exporter.publisher import TransitionPublisher
from exporter.sink import ClusterState
from exporter.store import MetricStore

GZIP_IN_THREAD_BYTES = 1 << 20
"""Bodies above this are compressed off the event loop so watches keep flowing meanwhile."""

WRITE_BATCH_BYTES = 1 << 20
"""An uncompressed body is written in pieces of about this size."""

STORE_KEY = web.AppKey("store", MetricStore)


def build_app(
    store: MetricStore,
    registries: Sequence[CollectorRegistry] = (),
    *,
    ready: Callable[[], bool] | None = None,
    sync_counts: Callable[[], tuple[int, int]] | None = None,
    publisher: TransitionPublisher | None = None,
) -> web.Application:
    """An aiohttp application serving the store; starts and stops ``publisher`` with the app.

    ``ready`` overrides the readiness rule (default: every reachable cluster finished its first
    sync, see ``MetricStore.ready``), e.g. to also wait for discovery of a kubeconfig directory.
    ``sync_counts`` gives (clusters synced, clusters configured) for ``/readyz`` and the status
    page (default: the clusters the store has heard of; the fleet knows those still connecting).
    """
    app = web.Application()
    app[STORE_KEY] = store
    is_ready = ready if ready is not None else store.ready
    counts = sync_counts if sync_counts is not None else (lambda: store_sync_counts(store))

    async def metrics(request: web.Request) -> web.StreamResponse:
        fmt = exposition.negotiate(request.headers.get("Accept"))
        started = time.perf_counter()
        parts = await exposition.render_parts(store, fmt, registries)
        store.metrics.scrape_duration.observe(time.perf_counter() - started)
        headers = {"Content-Type": exposition.content_type(fmt)}
        total = sum(map(len, parts))
        if exposition.gzip_accepted(request.headers.get("Accept-Encoding")):
            if total > GZIP_IN_THREAD_BYTES:
                body = await asyncio.get_running_loop().run_in_executor(
                    None, exposition.compress_parts, parts
                )
            else:
                body = exposition.compress_parts(parts)
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=body, headers=headers)
        # Written in batches with backpressure: a 50,000-object body is 70 MiB, and joining it
        # (plus asyncio's copy of whatever the socket did not take at once) cost 140 MiB of
        # peak RSS per scrape.
        response = web.StreamResponse(headers=headers)
        response.content_length = total
        await response.prepare(request)
        for batch in exposition.batches(parts, WRITE_BATCH_BYTES):
            await response.write(batch)
        await response.write_eof()
        return response

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        synced, configured = counts()
        summary = f"{synced}/{configured} clusters synced"
        unsynced = sorted(
            (name, cl.state)
            for name, cl in store.clusters.items()
            if cl.state is not None and not cl.state.synced
        )
        if is_ready():
            # Ready does not mean complete: say which clusters are left out and why.
            left_out = ", ".join(f"{n} ({_reachable(st)})" for n, st in unsynced if st)
            tail = f"; not synced: {left_out}" if left_out else ""
            return web.Response(text=f"ready: {summary}{tail}\n")
        pending = sorted(
            name
            for name, cl in store.clusters.items()
            if cl.state is None or (cl.state.reachable and not cl.state.synced)
        )
        waiting = ", ".join(pending) or "any cluster"
        text = f"not ready: {summary}; waiting for the first sync of {waiting}"
        return web.Response(status=503, text=text + "\n")

    async def index(request: web.Request) -> web.Response:
        page = status_page(store, is_ready(), counts())
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    if publisher is not None:

        async def start_publisher(app: web.Application) -> None:
            publisher.start()

        async def stop_publisher(app: web.Application) -> None:
            await publisher.stop()

        app.on_startup.append(start_publisher)
        app.on_cleanup.append(stop_publisher)
    return app


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _reachable(state: ClusterState) -> str:
    if state.auth_failed:
        return "NO: credentials rejected" if not state.reachable else "credentials rejected"
    return "yes" if state.reachable else "NO"


def store_sync_counts(store: MetricStore) -> tuple[int, int]:
    """(clusters synced, clusters known) from what the watch layer reported to the store."""
    states = [cl.state for cl in store.clusters.values()]
    return sum(1 for st in states if st is not None and st.synced), len(states)


def _reachable_cell(state: ClusterState | None) -> str:
    return "unknown" if state is None else _reachable(state)


def status_page(store: MetricStore, ready: bool, sync_counts: tuple[int, int] | None = None) -> str:
    """A short human-readable page: clusters, their sync state and object counts."""
    synced, configured = sync_counts if sync_counts is not None else store_sync_counts(store)
    rows = []
    for name in sorted(store.clusters):
        cl = store.clusters[name]
        state = cl.state
        counts = dict.fromkeys(STATUSES, 0)
        for kd in cl.kinds.values():
            for status, n in kd.counts.items():
                counts[status] += n
        cells = [
            name,
            _reachable_cell(state),
            "unknown" if state is None else ("yes" if state.synced else "syncing"),
            _when(state.last_full_sync if state else None),
            str(sum(counts.values())),
            *(str(counts[s]) for s in STATUSES if s != "ready"),
            state.error if state is not None else "",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in cells) + "</tr>")
    head = ["cluster", "reachable", "synced", "last full sync", "objects"]
    head += [s for s in STATUSES if s != "ready"] + ["last error"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fluxwatch exporter</title>"
        "</head><body><h1>fluxwatch exporter</h1>"
        f"<p>{'ready' if ready else 'not ready (initial sync in progress)'}; "
        f"{synced}/{configured} clusters synced, {store.object_count()} objects, "
        f"per-object series: {html.escape(store.per_object)}. "
        "<a href='/metrics'>/metrics</a></p>"
        "<table border='1'><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
