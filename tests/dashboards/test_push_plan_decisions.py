"""The push's decisions, table-driven: what Grafana holds at a UID decides create, update,
unchanged or conflict, and an update names what it changes."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.push import Stored, changes, plan, upload_body

MINE = {
    "uid": "fluxwatch-fleet",
    "title": "Flux fleet overview",
    "tags": ["flux", "fluxwatch"],
    "panels": [{"title": "Clusters", "type": "stat"}, {"title": "Top failing", "type": "table"}],
}


def edited(**changes_: Any) -> dict[str, Any]:
    return {**MINE, **changes_}


@pytest.mark.parametrize(
    ("stored", "folder", "action", "said"),
    [
        (None, "f", "create", ()),
        (Stored(edited(id=3, version=4), 4, "f"), "f", "unchanged", ()),
        (
            Stored(edited(tags=["mine"]), 2, "f"),
            "f",
            "conflict",
            ("exists and is not managed by fluxwatch",),
        ),
        (Stored(edited(), 2, "other"), "f", "update", ("moved to the folder",)),
        (Stored(edited(title="Old title"), 2, "f"), "f", "update", ("title changed",)),
        (
            Stored(edited(panels=[{"title": "Clusters", "type": "timeseries"}]), 2, "f"),
            "f",
            "update",
            ("panel added: Top failing", "panel changed: Clusters"),
        ),
    ],
)
def test_plan(stored: Stored | None, folder: str, action: str, said: tuple[str, ...]) -> None:
    (step,) = plan({"fluxwatch-fleet": MINE}, {"fluxwatch-fleet": stored}, folder)
    assert (step.action, step.changes) == (action, said)
    if stored is not None and action == "update":
        assert step.version == stored.version


def test_panels_removed_are_named() -> None:
    assert changes(MINE, edited(panels=[])) == (
        "panel removed: Clusters",
        "panel removed: Top failing",
    )


def test_an_update_sends_the_stored_id_and_version_without_overwrite() -> None:
    base = Stored(edited(id=17, version=5), 5, "f")
    body = upload_body(MINE, "f", base, "why")
    assert body["overwrite"] is False
    assert body["folderUid"] == "f"
    assert (body["dashboard"]["id"], body["dashboard"]["version"]) == (17, 5)
    created = upload_body(edited(version=9), "f", None, "why")
    assert created["dashboard"]["id"] is None
    assert "version" not in created["dashboard"]
