"""Runs every benchmark module in order; ``python -m bench NAME...`` runs only those."""

from __future__ import annotations

import importlib
import sys

MODULES = ("simulator", "exporter_scrape", "exporter_sync", "bridge")


def main(argv: list[str]) -> int:
    selected = argv or list(MODULES)
    for name in selected:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench/{name}", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
