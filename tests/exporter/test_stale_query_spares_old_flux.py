"""The documented stale-Kustomization query, run by the real Prometheus against the exporter
watching a fleet with an old-Flux (v1beta2) cluster: it flags the Kustomization that stopped
running and none of the old-Flux ones, whose status records no run (no last attempt is
exported for them rather than a misleading one)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from simulator.scenario import preset
from tests.conftest import REPO_ROOT
from tests.exporter.scrape import series
from tests.exporter.simfleet import ref, running
from tests.prometheus import Job, running_prometheus

STALE_COMMENT = "# Stale: a Kustomization has not run for two intervals"


def documented_stale_query() -> str:
    """The query as docs/metrics.md prints it (its comment lines dropped)."""
    lines = (REPO_ROOT / "docs" / "metrics.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(STALE_COMMENT))
    query: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        if not line.startswith("#"):
            query.append(line.strip())
    assert query, "the stale query is missing from docs/metrics.md"
    return " ".join(query)


def _flagged(result: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["metric"]["cluster"], r["metric"]["name"]) for r in result}


async def test_stale_query_flags_a_stopped_kustomization_and_no_old_flux_one(
    tmp_path: Path,
) -> None:
    query = documented_stale_query()
    # The fleet's clock starts an hour ago, so an hour of normal reconciling ends at "now", the
    # time Prometheus evaluates time() at.
    hour_ago = dt.datetime.fromtimestamp(int(time.time()) - 3600, dt.UTC)
    async with running(tmp_path, scenario=preset("small", seed=3), start_time=hour_ago) as run:
        legacy = run.sim.cluster("c3-legacy")
        assert legacy.profile == "legacy"
        ns, name = ref(run.c1.objects("Kustomization")[0])
        run.c1.suspend("Kustomization", ns, name)  # stops running: truly stale in an hour

        target = urlsplit(run.exporter.url).netloc
        async with running_prometheus(tmp_path, run.http, [Job("fluxwatch", [target])]) as prom:
            flagged = _flagged(await prom.until(query, bool, "the fleet's first staleness"))
            # Nothing has run for an hour yet: the current clusters' Kustomizations are stale,
            # and not one old-Flux Kustomization is claimed stale on a guess.
            assert {c for c, _ in flagged} == {"c1", "c2"}
            # The old-Flux Kustomizations are watched and ready, but carry no last attempt.
            data = await run.scrape()
            assert series(data, "flux_resource_status", cluster="c3-legacy", kind="Kustomization")
            assert not series(
                data,
                "flux_resource_last_attempt_timestamp_seconds",
                cluster="c3-legacy",
                kind="Kustomization",
            )

            for _ in range(60):  # an hour of normal reconciliation, in minutes
                await run.sim.advance(60)
            result = await prom.until(
                query,
                lambda r: _flagged(r) == {("c1", name)},
                "only the stopped Kustomization to be stale",
            )
    assert result[0]["metric"]["kind"] == "Kustomization"
