"""The /metrics body: headers once per family, then the store's pre-rendered bytes.

Two formats from the same lines: the Prometheus text format 0.0.4 and OpenMetrics 1.0.0. They
differ only in the counter family name in ``# HELP``/``# TYPE`` (OpenMetrics drops ``_total``),
HELP escaping, and the closing ``# EOF``; per-object lines are gauges and are shared byte for
byte. The small aggregates (counts, counters, histograms) are formatted per scrape. The
prometheus-client self-metrics registries are appended last.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_exposition
from prometheus_client.openmetrics import exposition as om_exposition

from catalogue import exporter as c
from catalogue.exporter import MetricSpec
from exporter.clusterdata import ClusterData, KindData
from exporter.families import escape_label, format_value
from exporter.history import Histogram
from exporter.store import MetricStore

Format = Literal["text", "openmetrics"]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def _escape_help(text: str, fmt: Format) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    if fmt == "openmetrics":
        text = text.replace('"', '\\"')
    return text


def header(spec: MetricSpec, fmt: Format) -> bytes:
    name = spec.family if fmt == "openmetrics" else spec.name
    return f"# HELP {name} {_escape_help(spec.help, fmt)}\n# TYPE {name} {spec.type}\n".encode()


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    return ",".join(f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=True) if v)


def _line(name: str, names: Sequence[str], values: Sequence[str], value: float) -> str:
    labels = _labels(names, values)
    text = format_value(float(value))
    return f"{name}{{{labels}}} {text}\n" if labels else f"{name} {text}\n"


def _go_float(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _histogram_lines(spec: MetricSpec, series: dict[tuple[str, ...], Histogram]) -> str:
    out: list[str] = []
    for labels, hist in sorted(series.items()):
        pairs = _labels(spec.labels, labels)
        sep = "," if pairs else ""
        for bound, count in hist.cumulative():
            out.append(f'{spec.name}_bucket{{{pairs}{sep}le="{_go_float(bound)}"}} {count}\n')
        out.append(f'{spec.name}_bucket{{{pairs}{sep}le="+Inf"}} {hist.count}\n')
        out.append(_line(f"{spec.name}_sum", spec.labels, labels, hist.total))
        out.append(_line(f"{spec.name}_count", spec.labels, labels, hist.count))
    return "".join(out)


def _state_text(name: str, cl: ClusterData) -> dict[str, bytes]:
    """A cluster's state lines, rendered once per ``cluster_changed``."""
    if cl.state_text is not None:
        return cl.state_text
    state = cl.state
    text: dict[str, bytes] = {}
    if state is not None:
        one = ("cluster",)
        text[c.CLUSTER_REACHABLE.name] = _line(
            c.CLUSTER_REACHABLE.name, one, (name,), state.reachable
        ).encode()
        text[c.CLUSTER_AUTH_FAILED.name] = _line(
            c.CLUSTER_AUTH_FAILED.name, one, (name,), state.auth_failed
        ).encode()
        text[c.CLUSTER_SYNCED.name] = _line(
            c.CLUSTER_SYNCED.name, one, (name,), state.synced
        ).encode()
        if state.last_full_sync is not None:
            text[c.CLUSTER_LAST_FULL_SYNC.name] = _line(
                c.CLUSTER_LAST_FULL_SYNC.name, one, (name,), state.last_full_sync
            ).encode()
        spec = c.CLUSTER_KIND_SERVED
        text[spec.name] = "".join(
            _line(spec.name, spec.labels, (name, kind, version), 1)
            for kind, version in sorted(state.served.items())
        ).encode()
    cl.state_text = text
    return text


def _counts_text(name: str, kind: str, kd: KindData | None) -> bytes:
    """Counts by status of one (cluster, kind), re-rendered only after they change."""
    if kd is not None and kd.counts_text is not None:
        return kd.counts_text
    spec = c.CLUSTER_RESOURCES
    text = "".join(
        _line(spec.name, spec.labels, (name, kind, status), kd.counts[status] if kd else 0)
        for status in c.STATUSES
    ).encode()
    if kd is not None:
        kd.counts_text = text
    return text


def _aggregate_bodies(store: MetricStore) -> Iterable[tuple[MetricSpec, bytes]]:
    resources: list[bytes] = []
    by_cluster = [(name, cl, _state_text(name, cl)) for name, cl in store.clusters.items()]
    for name, cl, _ in by_cluster:
        kinds = cl.kinds.keys() | (cl.state.served.keys() if cl.state is not None else set())
        resources.extend(_counts_text(name, kind, cl.kinds.get(kind)) for kind in sorted(kinds))
    yield c.CLUSTER_RESOURCES, b"".join(resources)
    for spec in (
        c.CLUSTER_REACHABLE,
        c.CLUSTER_AUTH_FAILED,
        c.CLUSTER_SYNCED,
        c.CLUSTER_LAST_FULL_SYNC,
        c.CLUSTER_KIND_SERVED,
    ):
        yield spec, b"".join(text.get(spec.name, b"") for _, _, text in by_cluster)
    for spec in (c.TRANSITIONS, c.REVISIONS_APPLIED):
        series = store.aggregates.counters.get(spec.name, {})
        body = "".join(_line(spec.name, spec.labels, k, v) for k, v in sorted(series.items()))
        yield spec, body.encode()
    for spec in (c.APPLY_LATENCY, c.TIME_TO_RECOVER):
        body = _histogram_lines(spec, store.aggregates.histograms.get(spec.name, {}))
        yield spec, body.encode()


def render(
    store: MetricStore, fmt: Format = "text", registries: Sequence[CollectorRegistry] = ()
) -> bytes:
    """The whole exposition, in one synchronous step (one consistent snapshot)."""
    n = len(store.families)
    per_cluster = [[cl.chunk(i) for i in range(n)] for cl in store.clusters.values()]
    return b"".join(_assemble_parts(store, fmt, registries, per_cluster))


async def render_async(
    store: MetricStore,
    fmt: Format = "text",
    registries: Sequence[CollectorRegistry] = (),
    clusters_per_step: int = 25,
) -> bytes:
    """The same body as ``render``, yielding to the event loop (see ``render_parts``)."""
    return b"".join(await render_parts(store, fmt, registries, clusters_per_step))


async def render_parts(
    store: MetricStore,
    fmt: Format = "text",
    registries: Sequence[CollectorRegistry] = (),
    clusters_per_step: int = 25,
) -> list[bytes]:
    """The body as the list of pieces it is joined from, yielding between groups of clusters.

    After a burst of events touching every cluster, re-joining all lines of a large fleet takes
    a few hundred milliseconds; yielding keeps the watches flowing meanwhile. Each cluster's
    lines are still taken in one step, so no (cluster, kind) is ever seen half-replaced. The
    pieces are the store's cached chunks (no copy): the server writes them out in batches
    instead of joining a 70 MiB body (and asyncio then copying what the socket did not take).
    """
    n = len(store.families)
    per_cluster: list[list[bytes]] = []
    for count, cl in enumerate(list(store.clusters.values()), 1):
        per_cluster.append([cl.chunk(i) for i in range(n)])
        if count % clusters_per_step == 0:
            await asyncio.sleep(0)
    return _assemble_parts(store, fmt, registries, per_cluster)


def _assemble_parts(
    store: MetricStore,
    fmt: Format,
    registries: Sequence[CollectorRegistry],
    per_cluster: Sequence[Sequence[bytes]],
) -> list[bytes]:
    parts: list[bytes] = []
    for index, family in enumerate(store.families):
        chunks = [row[index] for row in per_cluster if row[index]]
        if chunks:
            parts.append(header(family.spec, fmt))
            parts.extend(chunks)
    for spec, body in _aggregate_bodies(store):
        if body:
            parts.append(header(spec, fmt))
            parts.append(body)
    store.metrics.objects.set(store.object_count())
    # The store's own registry first; skip it if the caller passed it again (no duplicates).
    registries = [
        store.metrics.registry,
        *(r for r in registries if r is not store.metrics.registry),
    ]
    for registry in registries:
        if fmt == "openmetrics":
            data = om_exposition.generate_latest(registry)  # type: ignore[no-untyped-call]
            if data.endswith(b"# EOF\n"):
                data = data[: -len(b"# EOF\n")]
            parts.append(data)
        else:
            parts.append(text_exposition.generate_latest(registry))
    if fmt == "openmetrics":
        parts.append(b"# EOF\n")
    return parts


def batches(parts: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The parts joined into writes of about ``size`` bytes (a write per part is slow, one
    write of everything doubles the memory of a scrape)."""
    batch: list[bytes] = []
    pending = 0
    for part in parts:
        batch.append(part)
        pending += len(part)
        if pending >= size:
            yield b"".join(batch)
            batch, pending = [], 0
    if batch:
        yield b"".join(batch)


def compress_parts(parts: Iterable[bytes]) -> bytes:
    """The joined parts gzipped, without joining them first. Level 1: most of the size win for a
    fraction of the CPU of the default level 9."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    return b"".join(out)


def negotiate(accept: str | None) -> Format:
    """OpenMetrics when the client ranks it at least as high as the text format."""
    best_om = best_text = -1.0
    for media_range in (accept or "").split(","):
        fields = [f.strip() for f in media_range.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == "application/openmetrics-text":
            best_om = max(best_om, q)
        elif media in ("text/plain", "*/*", "text/*"):
            best_text = max(best_text, q)
    return "openmetrics" if best_om > 0 and best_om >= best_text else "text"


def content_type(fmt: Format) -> str:
    return OPENMETRICS_CONTENT_TYPE if fmt == "openmetrics" else TEXT_CONTENT_TYPE


def gzip_accepted(accept_encoding: str | None) -> bool:
    for item in (accept_encoding or "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip"):
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False
