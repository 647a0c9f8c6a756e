"""One cluster's objects, its resourceVersion counter, its bounded watch history and its watchers.

Objects are kept as a small metadata dict plus pre-encoded ``spec`` and ``status`` bytes: 50,000
objects fit in little memory, a list is a byte join, and each change is encoded once and the
same bytes are fanned out to every watcher.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from simulator.kinds import BY_KIND, FluxProfile, KindInfo
from simulator.wire import Requirement, encode, expired, matches_all

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Outage = Literal["refuse", "unavailable"]
Key = tuple[str, str, str]  # kind, namespace, name

# A watcher whose client reads slower than this many unsent events is cut off, as
# kube-apiserver does with a slow consumer; the client then re-lists or resumes.
MAX_PENDING = 20_000


@dataclass(slots=True)
class Stored:
    info: KindInfo
    namespace: str
    name: str
    meta: dict[str, Any]
    meta_bytes: bytes
    spec: bytes
    status: bytes | None
    rv: int

    @property
    def labels(self) -> Mapping[str, str]:
        labels: Mapping[str, str] = self.meta.get("labels") or {}
        return labels


@dataclass(slots=True)
class HistoryEntry:
    rv: int
    plural: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    line: bytes


@dataclass(eq=False, slots=True)
class Watcher:
    """One open watch stream; the server's writer task drains ``buf`` when ``wake`` is set."""

    plural: str
    namespace: str | None
    labels: tuple[Requirement, ...]
    fields: tuple[Requirement, ...]
    bookmarks: bool
    buf: list[bytes] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closing: Literal["end", "abort"] | None = None

    def wants(self, namespace: str, name: str, labels: Mapping[str, str]) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.labels and not matches_all(self.labels, labels):
            return False
        if self.fields:
            values = {"metadata.name": name, "metadata.namespace": namespace}
            return all(r.matches(values) for r in self.fields)
        return True

    def push(self, line: bytes) -> None:
        if self.closing is not None:
            return
        self.buf.append(line)
        if len(self.buf) > MAX_PENDING:
            self.close("end")
        self.wake.set()

    def close(self, how: Literal["end", "abort"]) -> None:
        if self.closing is None:
            self.closing = how
        self.wake.set()


class TooOld(Exception):
    """The asked resourceVersion is older than the retained history (HTTP/watch 410)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.status = expired(requested, oldest)


def object_bytes(api_version: bytes, stored: Stored) -> bytes:
    """The object's JSON with keys in sorted order, assembled from its pre-encoded parts."""
    parts = [
        b'{"apiVersion":"',
        api_version,
        b'","kind":"',
        stored.info.kind.encode(),
        b'","metadata":',
        stored.meta_bytes,
        b',"spec":',
        stored.spec,
    ]
    if stored.status is not None:
        parts += [b',"status":', stored.status]
    parts.append(b"}")
    return b"".join(parts)


class ClusterStore:
    """All state kube-apiserver would hold for one virtual cluster."""

    def __init__(
        self,
        name: str,
        profile: FluxProfile,
        missing_groups: frozenset[str],
        history_size: int,
    ) -> None:
        self.name = name
        self.profile = profile
        self.missing_groups = missing_groups
        self.resource_version = 0
        self.history: deque[HistoryEntry] = deque()
        self.history_size = history_size
        # Watches from any version >= floor can be served from the history.
        self.floor = 0
        self.objects: dict[str, dict[tuple[str, str], Stored]] = {}
        self.watchers: dict[str, set[Watcher]] = {}
        self.outage: Outage | None = None
        self.api_versions = {
            info.kind: info.api_version(profile).encode()
            for info in BY_KIND.values()
            if info.group not in missing_groups
        }

    # --- reads --------------------------------------------------------------------------

    def serves(self, kind: str) -> bool:
        return kind in self.api_versions

    def body(self, stored: Stored) -> bytes:
        return object_bytes(self.api_versions[stored.info.kind], stored)

    def get(self, kind: str, namespace: str, name: str) -> Stored | None:
        return self.objects.get(BY_KIND[kind].plural, {}).get((namespace, name))

    def items(self, plural: str) -> Iterator[Stored]:
        bucket = self.objects.get(plural, {})
        for key in sorted(bucket):
            yield bucket[key]

    def decoded(self, stored: Stored) -> dict[str, Any]:
        """A fresh dict of the object as served: a deep copy that cannot alias the store."""
        doc: dict[str, Any] = json.loads(self.body(stored))
        return doc

    # --- writes -------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def put(
        self,
        info: KindInfo,
        namespace: str,
        name: str,
        meta: dict[str, Any],
        spec: bytes,
        status: bytes | None,
        *,
        initial: bool = False,
    ) -> Stored:
        """Create or replace an object; emits ADDED or MODIFIED.

        ``initial`` objects exist before the server starts: like objects created before a
        watch cache was filled, they are listed but leave no history, which keeps a 50,000
        object fleet from holding 50,000 creation events."""
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        bucket = self.objects.setdefault(info.plural, {})
        existing = bucket.get((namespace, name))
        stored = Stored(info, namespace, name, meta, encode(meta), spec, status, rv)
        bucket[(namespace, name)] = stored
        if initial:
            self.floor = rv
        else:
            self._emit("MODIFIED" if existing else "ADDED", stored)
        return stored

    def set_status(
        self, stored: Stored, status: bytes | None, meta_changes: Mapping[str, Any] = {}
    ) -> None:
        """Replace the status (and optionally metadata fields) of a stored object; MODIFIED."""
        rv = self._next_rv()
        stored.meta.update(meta_changes)
        stored.meta["resourceVersion"] = str(rv)
        stored.meta_bytes = encode(stored.meta)
        stored.status = status
        stored.rv = rv
        self._emit("MODIFIED", stored)

    def set_spec(self, stored: Stored, spec: bytes) -> None:
        """Replace the spec; bumps metadata.generation as the API server does."""
        stored.spec = spec
        self.set_status(
            stored,
            stored.status,
            {"generation": int(stored.meta.get("generation", 1)) + 1},
        )

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        info = BY_KIND[kind]
        stored = self.objects.get(info.plural, {}).pop((namespace, name), None)
        if stored is None:
            return False
        rv = self._next_rv()
        stored.meta["resourceVersion"] = str(rv)
        stored.meta_bytes = encode(stored.meta)
        stored.rv = rv
        self._emit("DELETED", stored)
        return True

    def _event_line(self, event_type: EventType, stored: Stored) -> bytes:
        """One watch event as a JSON line, the bytes every watcher of the object is sent."""
        return b"".join(
            [b'{"object":', self.body(stored), b',"type":"', event_type.encode(), b'"}\n']
        )

    def _emit(self, event_type: EventType, stored: Stored) -> None:
        line = self._event_line(event_type, stored)
        if len(self.history) >= self.history_size > 0:
            dropped = self.history.popleft()
            self.floor = dropped.rv
        if self.history_size > 0:
            self.history.append(
                HistoryEntry(
                    stored.rv,
                    stored.info.plural,
                    stored.namespace,
                    stored.name,
                    stored.labels,
                    line,
                )
            )
        else:
            self.floor = stored.rv
        for watcher in self.watchers.get(stored.info.plural, ()):
            if watcher.wants(stored.namespace, stored.name, stored.labels):
                watcher.push(line)

    def compact(self) -> None:
        """Forget the retained events: any older resourceVersion now gets 410 Gone."""
        self.history.clear()
        self.floor = self.resource_version

    # --- watches ------------------------------------------------------------------------

    def check_version(self, requested: int) -> None:
        if requested < self.floor:
            raise TooOld(requested, self.floor)

    def replay(self, watcher: Watcher, since: int | None) -> None:
        """Queue the events a new watch must see first: synthetic ADDED for the current state
        (no or zero version), else every retained event after ``since``."""
        if since is None:
            for stored in self.items(watcher.plural):
                if watcher.wants(stored.namespace, stored.name, stored.labels):
                    watcher.buf.append(self._event_line("ADDED", stored))
            return
        self.check_version(since)
        for entry in self.history:
            if (
                entry.rv > since
                and entry.plural == watcher.plural
                and watcher.wants(entry.namespace, entry.name, entry.labels)
            ):
                watcher.buf.append(entry.line)

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.setdefault(watcher.plural, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.get(watcher.plural, set()).discard(watcher)

    def all_watchers(self) -> Iterable[Watcher]:
        for watchers in self.watchers.values():
            yield from watchers

    def watcher_count(self) -> int:
        return sum(len(watchers) for watchers in self.watchers.values())

    def set_outage(self, outage: Outage | None) -> None:
        """Take the cluster's API down (or back); open watches end the way the outage implies."""
        self.outage = outage
        if outage is not None:
            how: Literal["end", "abort"] = "abort" if outage == "refuse" else "end"
            for watcher in list(self.all_watchers()):
                watcher.close(how)
