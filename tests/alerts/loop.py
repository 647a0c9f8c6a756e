"""The whole alert loop on loopback, real binaries only: the exporter watching the simulator, a
real Prometheus scraping it (and the bridge) and evaluating the generated rules, a real
Alertmanager with the shipped example configuration, and the bridge routing each alert to the
owning team's destination (a fake webhook receiver).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alerts.render import render
from alerts.settings import AlertSettings, with_overrides
from notifiers.app import Bridge
from simulator.scenario import Scenario
from tests.alertmanager import RunningAlertmanager, running_alertmanager, shipped_config
from tests.exporter.simfleet import Running, running
from tests.notifiers.fakes import FakeDestination, eventually, fast_webhook, make_bridge
from tests.prometheus import Job, Prometheus, running_prometheus

TOKEN = "loop-bridge-token-7d2e"
TEAMS = ("search", "payments")

# Seconds instead of minutes: the thresholds are settings, so the rules are the shipped ones.
FAST = (
    "evaluation_interval=1s",
    "failing_for.HelmRelease=4s",
    "fleet_failing_for=1s",
    "retries_exhausted_for=4s",
)


@dataclass
class Loop:
    run: Running
    bridge: Bridge
    prometheus: Prometheus
    alertmanager: RunningAlertmanager
    teams: dict[str, FakeDestination]

    def alert_events(self, team: str, alertname: str, status: str) -> list[dict[str, Any]]:
        """Events delivered to ``team`` about ``alertname`` with ``status`` (firing/resolved)."""
        return [
            e
            for e in self.teams[team].applied_events()
            if e["source"] == "alertmanager"
            and e["labels"].get("alertname") == alertname
            and e["status"] == status
        ]

    async def delivered(
        self, team: str, alertname: str, status: str, within: float = 30.0
    ) -> dict[str, Any]:
        """Wait for one such notification; on timeout say what Alertmanager complained of."""
        try:
            await eventually(lambda: bool(self.alert_events(team, alertname, status)), within)
        except AssertionError:
            raise AssertionError(
                f"no {status} {alertname} reached {team}; Alertmanager logged: "
                f"{self.alertmanager.problems()}; every team got: "
                f"{ {t: d.applied_events() for t, d in self.teams.items()} }"
            ) from None
        return self.alert_events(team, alertname, status)[0]


def bridge_document(state_dir: Path, token_file: Path, teams: dict[str, FakeDestination]) -> Any:
    return {
        "bridge": {
            "listen": "127.0.0.1:0",
            "state_dir": str(state_dir),
            "alertmanager": {"bearer_token_file": str(token_file)},
            "owners": {
                "teams": [
                    {"name": t, "namespaces": [t], "destinations": [f"{t}-hook"]} for t in teams
                ]
            },
            "route": {
                "group_wait": "0s",
                "group_interval": "1s",
                "routes": [{"name": "owners", "matchers": ['owner!=""'], "owner": True}],
            },
            "destinations": {f"{t}-hook": fast_webhook(d.url) for t, d in teams.items()},
        }
    }


@contextlib.asynccontextmanager
async def alert_loop(
    tmp_path: Path, scenario: Scenario, overrides: Sequence[str] = ()
) -> AsyncIterator[Loop]:
    settings: AlertSettings = with_overrides(AlertSettings(), (*FAST, *overrides))
    rules = tmp_path / "rules.yml"
    rules.write_text(render(settings), encoding="utf-8")
    token_file = tmp_path / "bridge-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    async with contextlib.AsyncExitStack() as stack:
        teams = {t: await FakeDestination().start() for t in TEAMS}
        for dest in teams.values():
            stack.push_async_callback(dest.stop)
        bridge = make_bridge(bridge_document(tmp_path / "outbox", token_file, teams))
        await bridge.start()
        stack.push_async_callback(bridge.stop)
        run = await stack.enter_async_context(running(tmp_path / "fleet", scenario=scenario))
        am_config = shipped_config(
            f"http://127.0.0.1:{bridge.port}/alertmanager",
            token_file,
            group_wait="1s",
            group_interval="1s",
            repeat_interval="1h",
        )
        (tmp_path / "am").mkdir()
        am = await stack.enter_async_context(
            running_alertmanager(tmp_path / "am", run.http, am_config)
        )
        (tmp_path / "prom").mkdir()
        jobs = [
            Job("fluxwatch", [urlsplit(run.exporter.url).netloc]),
            Job("fluxwatch-bridge", [f"127.0.0.1:{bridge.port}"]),
        ]
        prom = await stack.enter_async_context(
            running_prometheus(
                tmp_path / "prom", run.http, jobs, [rules], [urlsplit(am.url).netloc]
            )
        )
        yield Loop(run, bridge, prom, am, teams)
