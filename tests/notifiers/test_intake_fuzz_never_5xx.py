"""Hypothesis throws malformed payloads, headers and paths at intake: never a 5xx, never a crash."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifiers.app import Bridge
from tests.notifiers.fakes import bridge_config, flux_event, make_bridge

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


class BackgroundBridge:
    """A bridge on its own loop in a thread, so hypothesis can drive it with plain sync calls."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> BackgroundBridge:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.bridge.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.bridge.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.bridge.port, timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundBridge]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    doc = bridge_config(tmp / "state", {"sink": {"type": "console"}}, max_body_bytes=8192)
    with (
        open("/dev/null", "w") as devnull,
        BackgroundBridge(make_bridge(doc, console=devnull)) as bg,
    ):
        yield bg


def mutate(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(base))
    target = doc
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target
    if isinstance(target, dict):
        target[path[-1]] = value
    return doc


FIELDS = [
    ["involvedObject"],
    ["involvedObject", "kind"],
    ["involvedObject", "name"],
    ["involvedObject", "namespace"],
    ["metadata"],
    ["metadata", "revision"],
    ["severity"],
    ["reason"],
    ["message"],
    ["timestamp"],
    ["alerts"],
]

bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.sampled_from(FIELDS), json_values).map(
        lambda fv: json.dumps(mutate(flux_event(), fv[0], fv[1])).encode()
    ),
    st.dictionaries(st.just("alerts"), st.lists(json_values, max_size=3)).map(
        lambda d: json.dumps(d).encode()
    ),
    st.integers(8000, 9000).map(lambda n: b'{"message": "' + b"x" * n + b'"}'),
)
paths = st.one_of(
    st.sampled_from(["/flux", "/alertmanager", "/flux/prod-1"]),
    st.text(min_size=1, max_size=20).map(lambda t: "/flux/" + urllib.parse.quote(t, safe="")),
)
headers = st.dictionaries(
    st.sampled_from(["X-Signature", "Authorization", "Content-Type", "Gotk-Component"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    max_size=3,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=paths, body=bodies, hdrs=headers)
def test_intake_never_answers_5xx(
    running: BackgroundBridge, path: str, body: bytes, hdrs: dict[str, str]
) -> None:
    status = running.post(path, body, hdrs)
    assert status < 500, (path, body[:200], hdrs)
    assert running.bridge.outbox.alive
