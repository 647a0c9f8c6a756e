"""Runs every benchmark module; ``python -m bench NAME...`` runs only those.

With more than one module, each runs in a process of its own: peak-RSS figures come from the
process's high-water mark, which an earlier benchmark in the same process would otherwise set.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

MODULES = (
    "simulator",
    "exporter_scrape",
    "exporter_sync",
    "bridge",
    "pgsize",
    "ha",
    "rollouts",
    "dashboards",
)


def main(argv: list[str]) -> int:
    selected = argv or list(MODULES)
    if len(selected) > 1:
        failed = 0
        for name in selected:
            failed |= subprocess.call([sys.executable, "-m", "bench", name]) != 0
        return 1 if failed else 0
    name = selected[0]
    module = importlib.import_module(f"bench.{name}")
    print(f"== bench/{name}", flush=True)
    module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
