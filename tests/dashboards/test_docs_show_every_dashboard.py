"""docs/dashboards.md shows a layout picture of every generated dashboard, and each picture
exists (regenerate with `make dashboard-pictures`)."""

from __future__ import annotations

from dashboards.build import generate
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_dashboard_has_a_picture_in_the_docs() -> None:
    text = (DOCS / "dashboards.md").read_text()
    for uid, board in generate().items():
        picture = DOCS / "dashboards" / f"{uid}.png"
        assert picture.read_bytes()[:8] == PNG_MAGIC, picture
        assert f"](dashboards/{uid}.png)" in text, uid
        assert f"`{uid}`" in text, f"{uid} is not described in docs/dashboards.md"
        assert board["title"] in text
    drawn = {p.stem for p in (DOCS / "dashboards").glob("*.png")}
    assert drawn == set(generate()), "stale pictures: run make dashboard-pictures"
