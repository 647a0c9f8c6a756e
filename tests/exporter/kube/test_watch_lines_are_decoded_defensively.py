"""Each watch line: events applied, bookmarks move the version, bad lines counted and skipped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.kinds import KINDS_BY_NAME
from exporter.kube.client import ApiError
from exporter.kube.health import WatchHealth
from exporter.kube.watching import Watcher, WatchTarget, handle_line
from exporter.settings import WatchSettings
from exporter.store import MetricStore


class _Observer:
    def request_succeeded(self, kind: str = "") -> None: ...
    def request_failed(self, error: BaseException, kind: str = "") -> None: ...
    def listed(self, kind: str, count: int) -> None: ...


def _ks(name: str, rv: str, ready: str = "True") -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": "apps",
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "generation": 1,
        },
        "spec": {"interval": "5m", "sourceRef": {"kind": "GitRepository", "name": "repo"}},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "ReconciliationSucceeded" if ready == "True" else "BuildFailed",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


def _line(event_type: str, obj: Any) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"


ADDED = _line("ADDED", _ks("a", "10"))
MODIFIED_FAILING = _line("MODIFIED", _ks("a", "11", ready="False"))
DELETED = _line("DELETED", _ks("a", "12"))
BOOKMARK = _line("BOOKMARK", {"kind": "Kustomization", "metadata": {"resourceVersion": "99"}})
NOT_JSON = b'{"type": "ADDED", "object": {\n'
NOT_AN_EVENT = b"[1, 2, 3]\n"
NO_UID = _line("ADDED", {"metadata": {"name": "x", "resourceVersion": "13"}})
UNKNOWN_TYPE = _line("SURPRISE", _ks("b", "14"))
GONE = _line("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})
FORBIDDEN = _line("ERROR", {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"})

STREAMS = [
    # id, lines, (status of apps/a or None), resourceVersion after, decode errors, events
    ("added", [ADDED], "ready", "10", 0, 1),
    ("added-then-failing", [ADDED, MODIFIED_FAILING], "failing", "11", 0, 2),
    ("added-then-deleted", [ADDED, DELETED], None, "12", 0, 2),
    ("bookmark-moves-version-only", [ADDED, BOOKMARK], "ready", "99", 0, 1),
    ("not-json-skipped", [ADDED, NOT_JSON, MODIFIED_FAILING], "failing", "11", 1, 2),
    ("not-an-event-skipped", [NOT_AN_EVENT, ADDED], "ready", "10", 1, 1),
    ("object-without-uid-skipped", [NO_UID, ADDED], "ready", "10", 1, 1),
    ("unknown-type-skipped", [ADDED, UNKNOWN_TYPE], "ready", "10", 0, 1),
]


def _watcher(store: MetricStore, health: WatchHealth) -> Watcher:
    return Watcher(
        client=None,  # type: ignore[arg-type]  # handle_line never touches the network
        target=WatchTarget("c1", KINDS_BY_NAME["Kustomization"], "v1"),
        sink=store,
        settings=WatchSettings(),
        observer=_Observer(),
        health=health,
        list_gate=asyncio.Semaphore(1),
    )


@pytest.mark.parametrize(
    ("lines", "status", "version", "decode_errors", "events"),
    [s[1:] for s in STREAMS],
    ids=[s[0] for s in STREAMS],
)
def test_stream(
    lines: list[bytes], status: str | None, version: str, decode_errors: int, events: int
) -> None:
    store = MetricStore()
    health = WatchHealth(CollectorRegistry())
    watcher = _watcher(store, health)
    for line in lines:
        assert handle_line(watcher, line) is None
    state = store.state_of("c1", "Kustomization", "apps", "a")
    assert (None if state is None else state.derived.status) == status
    assert watcher.state.resource_version == version
    labels = {"cluster": "c1"}
    registry = health.registry
    assert (
        registry.get_sample_value("fluxwatch_exporter_decode_errors_total", labels) == decode_errors
    )
    assert registry.get_sample_value("fluxwatch_exporter_watch_events_total", labels) == events


def test_410_error_event_asks_for_a_relist() -> None:
    watcher = _watcher(MetricStore(), WatchHealth(CollectorRegistry()))
    assert handle_line(watcher, ADDED) is None
    assert handle_line(watcher, GONE) == "gone"


def test_other_error_events_raise_with_their_code() -> None:
    watcher = _watcher(MetricStore(), WatchHealth(CollectorRegistry()))
    with pytest.raises(ApiError) as info:
        handle_line(watcher, FORBIDDEN)
    assert info.value.code == 403
    assert info.value.reason == "Forbidden"
