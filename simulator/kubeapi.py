"""The read side of one cluster's Kubernetes API, as client libraries expect it.

Discovery documents, get, paged and filtered list (resourceVersion rules, continue tokens,
tables) and watch streams (replay from a resourceVersion, bookmarks, streaming lists), all
answered from the cluster's store. The server in ``simulator.server`` authenticates the
request, applies outages and hands it here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from simulator import wire
from simulator.kinds import BY_PLURAL, KindInfo
from simulator.store import ClusterStore, Stored, TooOld, Watcher

JSON = "application/json"


def json_response(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=wire.encode(doc), status=status, content_type=JSON)


def status_response(code: int, reason: str, message: str) -> web.Response:
    """A Kubernetes ``Status`` object as the error body, the way the API server answers."""
    return json_response(wire.status_doc(code, reason, message), code)


async def route(
    request: web.Request, store: ClusterStore, parts: list[str], now: float
) -> web.StreamResponse:
    """Answer one authenticated GET below ``/clusters/<name>/`` (``parts``: the path after it);
    ``now`` is the simulated time, which table views compute ages from."""
    not_found = status_response(404, "NotFound", "the server could not find the requested resource")
    if parts in (["healthz"], ["readyz"], ["livez"]):
        return web.Response(text="ok")
    if parts == ["version"]:
        return json_response(wire.KUBE_VERSION)
    if parts == ["api"]:
        return json_response(wire.api_versions())
    if parts == ["api", "v1"]:
        return json_response(wire.core_resources())
    if not parts or parts[0] != "apis":
        return not_found
    served = wire.group_versions(store.profile, store.missing_groups)
    if len(parts) == 1:
        return json_response(wire.api_group_list(store.profile, store.missing_groups))
    group = parts[1]
    if group not in served:
        return not_found
    if len(parts) == 2:
        return json_response(wire.api_group(group, served[group]))
    version = parts[2]
    if version not in served[group]:
        return not_found
    kinds = [
        k
        for k in wire.served(store.missing_groups)
        if k.group == group and k.version_for(store.profile) == version
    ]
    if len(parts) == 3:
        return json_response(wire.api_resource_list(group, version, kinds, store.profile))
    rest = parts[3:]
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    info = BY_PLURAL.get(rest[0])
    if info is None or info not in kinds:
        return not_found
    if len(rest) == 1:
        if wire.parse_bool(request.query.get("watch")):
            return await _watch(request, store, info, namespace)
        return _list(request, store, info, namespace, now)
    if namespace is not None and len(rest) in (2, 3) and (len(rest) == 2 or rest[2] == "status"):
        stored = store.get(info.kind, namespace, rest[1])
        if stored is None:
            return json_response(
                {
                    **wire.status_doc(
                        404, "NotFound", f'{info.plural}.{info.group} "{rest[1]}" not found'
                    ),
                    "details": {"name": rest[1], "group": info.group, "kind": info.plural},
                },
                404,
            )
        return web.Response(body=store.body(stored), content_type=JSON)
    return not_found


def _selectors(
    request: web.Request,
) -> tuple[tuple[wire.Requirement, ...], tuple[wire.Requirement, ...]]:
    labels = wire.parse_label_selector(request.query.get("labelSelector", ""))
    fields = wire.parse_field_selector(request.query.get("fieldSelector", ""))
    return labels, fields


def _list(
    request: web.Request,
    store: ClusterStore,
    info: KindInfo,
    namespace: str | None,
    now: float,
) -> web.Response:
    labels, fields = _selectors(request)
    probe = Watcher(info.plural, namespace, labels, fields, False)
    query = request.query
    try:
        limit = int(query.get("limit", "0") or 0)
    except ValueError:
        return status_response(400, "BadRequest", "limit must be an integer")
    list_rv = store.resource_version
    after: tuple[str, str] | None = None
    token = query.get("continue")
    if token:
        list_rv, ns, name = wire.decode_continue(token)
        if list_rv < store.floor:
            return json_response(
                wire.status_doc(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter.",
                ),
                410,
            )
        after = (ns, name)
    elif query.get("resourceVersion") not in (None, "", "0"):
        try:
            asked = int(query["resourceVersion"])
        except ValueError:
            return status_response(400, "BadRequest", "resourceVersion must be an integer")
        match = query.get("resourceVersionMatch", "")
        if asked > store.resource_version:
            return status_response(
                504, "Timeout", f"Too large resource version: {asked}, current: {list_rv}"
            )
        if asked < store.floor or (match == "Exact" and asked != list_rv):
            # Only the newest state is kept, so older snapshots are gone.
            doc = wire.expired(asked, store.floor)
            return json_response(doc, 410)
    matching: list[Stored] = [
        s
        for s in store.items(info.plural)
        if (after is None or (s.namespace, s.name) > after)
        and probe.wants(s.namespace, s.name, s.labels)
    ]
    page = matching[:limit] if limit > 0 else matching
    meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
    if limit > 0 and len(matching) > limit:
        last = page[-1]
        meta["continue"] = wire.encode_continue(list_rv, last.namespace, last.name)
        if not labels and not fields:
            meta["remainingItemCount"] = len(matching) - limit
    if wire.wants_table(request.headers.get("Accept", "")):
        objects = [store.decoded(s) for s in page]
        doc = wire.table(info, objects, meta, now)
        return web.Response(body=wire.encode(doc), content_type=JSON)
    api_version = store.api_versions[info.kind]
    body = b"".join(
        [
            b'{"apiVersion":"',
            api_version,
            b'","items":[',
            b",".join(store.body(s) for s in page),
            b'],"kind":"',
            info.kind.encode(),
            b'List","metadata":',
            wire.encode(meta),
            b"}",
        ]
    )
    return web.Response(body=body, content_type=JSON)


async def _watch(
    request: web.Request, store: ClusterStore, info: KindInfo, namespace: str | None
) -> web.StreamResponse:
    labels, fields = _selectors(request)
    query = request.query
    bookmarks = wire.parse_bool(query.get("allowWatchBookmarks"))
    timeout: float | None = None
    if query.get("timeoutSeconds"):
        try:
            timeout = float(query["timeoutSeconds"])
        except ValueError:
            return status_response(400, "BadRequest", "timeoutSeconds must be a number")
    since: int | None = None
    raw_rv = query.get("resourceVersion", "")
    if raw_rv not in ("", "0"):
        try:
            since = int(raw_rv)
        except ValueError:
            return status_response(400, "BadRequest", "resourceVersion must be an integer")
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
    response.enable_chunked_encoding()
    await response.prepare(request)
    watcher = Watcher(info.plural, namespace, labels, fields, bookmarks)
    initial = wire.parse_bool(query.get("sendInitialEvents"))
    try:
        # A streaming list (sendInitialEvents) starts with the current state like a
        # version-less watch, then marks its end with an annotated BOOKMARK.
        store.replay(watcher, None if initial else since)
        if initial:
            watcher.buf.append(bookmark_line(store, info, initial_end=True))
    except TooOld as exc:
        line = b'{"object":' + wire.encode(exc.status) + b',"type":"ERROR"}\n'
        with contextlib.suppress(ConnectionResetError):  # the client may already be gone
            await response.write(line)
            await response.write_eof()
        return response
    store.add_watcher(watcher)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while True:
            if watcher.buf:
                data = b"".join(watcher.buf)
                watcher.buf.clear()
                await response.write(data)
                continue
            if watcher.closing is not None:
                break
            watcher.wake.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    await watcher.wake.wait()
            except TimeoutError:
                break
    except ConnectionResetError:
        # The client went away (aiohttp's ClientConnectionResetError is one): normal end.
        return response
    finally:
        store.remove_watcher(watcher)
    if watcher.closing == "abort":
        if request.transport is not None:
            request.transport.abort()
        return response
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def bookmark_line(store: ClusterStore, info: KindInfo, initial_end: bool = False) -> bytes:
    """A BOOKMARK watch event at the store's current resourceVersion; ``initial_end`` marks the
    end of a streaming list's initial events."""
    meta: dict[str, Any] = {"resourceVersion": str(store.resource_version)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {
        "apiVersion": store.api_versions[info.kind].decode(),
        "kind": info.kind,
        "metadata": meta,
    }
    return b'{"object":' + wire.encode(obj) + b',"type":"BOOKMARK"}\n'
