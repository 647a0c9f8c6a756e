"""Draw each generated dashboard's layout (panel titles, types and sizes on Grafana's grid) as a
PNG under docs/dashboards/, for docs/dashboards.md: no Grafana server runs where docs are read.

    usage: python scripts/dashboard_pictures.py [OUT_DIR]   (make dashboard-pictures)
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from dashboards.build import generate
from dashboards.common import GRID_COLUMNS

COLORS = {
    "stat": "#d8ecd4",
    "timeseries": "#d6e4f5",
    "table": "#f6ecd0",
    "state-timeline": "#ead9f2",
    "heatmap": "#f5d9d9",
    "text": "#eeeeee",
}
INCH_PER_COLUMN = 0.62
INCH_PER_ROW = 0.24  # a grid row is ~30 px against ~75 px per column on a 1,800 px screen


def draw(board: dict[str, Any], path: Path) -> None:
    panels = board["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    fig = plt.figure(figsize=(GRID_COLUMNS * INCH_PER_COLUMN, height * INCH_PER_ROW + 0.8))
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.8 / (height * INCH_PER_ROW + 0.8)))
    ax.set_xlim(0, GRID_COLUMNS)
    ax.set_ylim(height, 0)
    ax.axis("off")
    fig.suptitle(
        f"{board['title']}  ({board['uid']})", x=0.01, ha="left", fontsize=13, weight="bold"
    )
    for panel in panels:
        pos = panel["gridPos"]
        x, y, w, h = pos["x"], pos["y"], pos["w"], pos["h"]
        if panel["type"] == "row":
            ax.add_patch(
                FancyBboxPatch(
                    (x + 0.05, y + 0.1), w - 0.1, h - 0.2, boxstyle="square,pad=0", color="#555555"
                )
            )
            ax.text(
                x + 0.3,
                y + h / 2,
                panel["title"],
                va="center",
                color="white",
                fontsize=9,
                weight="bold",
            )
            continue
        ax.add_patch(
            FancyBboxPatch(
                (x + 0.08, y + 0.12),
                w - 0.16,
                h - 0.24,
                boxstyle="round,pad=0,rounding_size=0.15",
                facecolor=COLORS.get(panel["type"], "#ffffff"),
                edgecolor="#666666",
                linewidth=0.8,
            )
        )
        chars = max(8, int(w * 4.5))
        title = "\n".join(textwrap.wrap(panel["title"], chars, break_long_words=False)[:3])
        ax.text(x + 0.3, y + 0.45, title, va="top", fontsize=8.5, weight="bold")
        ax.text(
            x + 0.3,
            y + h - 0.35,
            f"{panel['type']}  {w}x{h}",
            va="bottom",
            fontsize=7.5,
            color="#444444",
        )
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path("docs/dashboards")
    out.mkdir(parents=True, exist_ok=True)
    for uid, board in generate().items():
        draw(board, out / f"{uid}.png")
    print(f"drew {len(generate())} dashboards into {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
