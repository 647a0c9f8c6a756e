"""Pure wire rules: label/field selector grammar, continue tokens, boolean flags, durations;
and the list-level 410/504 answers over HTTP."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import pytest

from simulator import wire
from simulator.model import go_duration
from simulator.server import SimulatorServer

LABELS = {"app": "web", "tier": "front", "toolkit.fluxcd.io/tenant": "payments"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app", True),
        ("!app", False),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web, api)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("app=web,tier=back", False),
        ("app=web, toolkit.fluxcd.io/tenant in (payments,search)", True),
        ("app=", False),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_label_selector_semantics(selector: str, matches: bool) -> None:
    assert wire.matches_all(wire.parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize(
    "selector",
    ["app in web", "a=b=c", "=x", "app in (x"],
    ids=["no-parens", "two-eq", "no-key", "open"],
)
def test_bad_label_selectors_are_rejected(selector: str) -> None:
    with pytest.raises(wire.SelectorError):
        wire.parse_label_selector(selector)


@pytest.mark.parametrize(
    ("selector", "ok"),
    [("metadata.name=a", True), ("metadata.namespace!=b", True), ("spec.suspend=true", False)],
    ids=["name", "namespace", "unsupported"],
)
def test_field_selectors(selector: str, ok: bool) -> None:
    if ok:
        assert wire.parse_field_selector(selector)
    else:
        with pytest.raises(wire.SelectorError):
            wire.parse_field_selector(selector)


def test_continue_token_round_trip_and_garbage() -> None:
    token = wire.encode_continue(42, "ns", "name")
    assert wire.decode_continue(token) == (42, "ns", "name")
    with pytest.raises(wire.SelectorError):
        wire.decode_continue("not-a-token")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("1", True), ("false", False), ("0", False), (None, False)],
)
def test_boolean_query_flags(value: str | None, expected: bool) -> None:
    assert wire.parse_bool(value) is expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4363, "436ms"),
        (2.5, "2.5s"),
        (30, "30s"),
        (600, "10m0s"),
        (3600, "1h0m0s"),
        (90.0, "1m30s"),
    ],
)
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


async def _get(sim: SimulatorServer, query: str) -> tuple[int, dict[str, Any]]:
    c1 = sim.cluster("c1")
    url = f"{c1.server_url}/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations?{query}"
    context = ssl.create_default_context(cafile=str(sim.ca_path))
    headers = {"Authorization": f"Bearer {c1.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=context) as response,
    ):
        return response.status, await response.json()


async def test_list_answers_410_504_and_400(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    status, page = await _get(sim, "limit=1")
    token = page["metadata"]["continue"]
    old = c1.resource_version
    c1.suspend("Kustomization", "flux-system", "infra")
    assert (await _get(sim, f"resourceVersion={old}&resourceVersionMatch=Exact"))[0] == 410
    assert (await _get(sim, f"resourceVersion={old}"))[0] == 200
    c1.compact_history()
    status, body = await _get(sim, f"limit=1&continue={token}")
    assert (status, body["reason"]) == (410, "Expired")
    status, body = await _get(sim, f"resourceVersion={old}")
    assert (status, body["code"], body["reason"]) == (410, 410, "Expired")
    status, body = await _get(sim, f"resourceVersion={c1.resource_version + 100}")
    assert (status, body["reason"]) == (504, "Timeout")
    status, body = await _get(sim, "labelSelector=a+in+b")
    assert (status, body["reason"]) == (400, "BadRequest")
    status, body = await _get(sim, "fieldSelector=metadata.name%3Dinfra")
    assert [i["metadata"]["name"] for i in body["items"]] == ["infra"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (600, "10m"),
        (4 * 3600, "4h"),
        (3 * 86400, "3d"),
        (800 * 86400, "2y"),
    ],
)
def test_table_ages(seconds: float, text: str) -> None:
    assert wire.human_age(seconds) == text


async def test_kubectl_table_output(sim: SimulatorServer) -> None:
    c1 = sim.cluster("c1")
    url = (
        f"{c1.server_url}/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations"
    )
    headers = {
        "Authorization": f"Bearer {c1.token}",
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    }
    context = ssl.create_default_context(cafile=str(sim.ca_path))
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=context) as response,
    ):
        doc = await response.json()
    assert doc["kind"] == "Table"
    assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", "Age", "Ready", "Status"]
    assert [r["cells"][0] for r in doc["rows"]] == ["flux-system", "infra"]
    assert all(r["cells"][1].endswith("d") and r["cells"][2] == "True" for r in doc["rows"])
    assert doc["rows"][0]["object"]["metadata"]["namespace"] == "flux-system"
