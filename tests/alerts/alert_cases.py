"""What the alert timeline tests share: the exporter's series for one object, an alert's
timeline (pending, firing with exactly these labels and annotations, resolved), and running a
timeline or a must-stay-silent case through `promtool test rules` on the generated rules.

Input series are what the exporter (job ``fluxwatch``) would serve; times in minutes from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerts.settings import AlertSettings, with_overrides
from tests.alerts.promtool_cases import RUNBOOKS, run_promtool, series

JOB = {"job": "fluxwatch", "instance": "exporter:9797"}
BRIDGE = {"job": "fluxwatch-bridge", "instance": "bridge:9095"}


def obj(cluster: str, kind: str, namespace: str, name: str) -> dict[str, str]:
    return {**JOB, "cluster": cluster, "kind": kind, "namespace": namespace, "name": name}


def status(
    o: dict[str, str], st: str, reason: str, root: tuple[str, str, str, str] | None = None
) -> dict[str, str]:
    labels = {**o, "status": st, "reason": reason}
    if root is not None:
        labels.update(
            zip(("root_kind", "root_namespace", "root_name", "root_reason"), root, strict=True)
        )
    return labels


CART = obj("c1", "HelmRelease", "checkout", "cart")
CART_ROOT = ("HelmRelease", "checkout", "cart", "UpgradeFailed")
WEB = obj("c1", "Kustomization", "apps", "web")


def fleet_cart(cluster: str) -> dict[str, str]:
    """The same HelmRelease failing with the same root cause on ``cluster`` for 20 minutes."""
    return series(
        "flux_resource_status",
        status(
            obj(cluster, "HelmRelease", "checkout", "cart"), "failing", "UpgradeFailed", CART_ROOT
        ),
        "1x20 stale",
    )


@dataclass(frozen=True)
class Case:
    id: str
    alert: str
    inputs: list[dict[str, str]]
    before: int  # minutes: still pending (or not yet true)
    at: int  # minutes: firing
    after: int  # minutes: resolved
    labels: dict[str, str]
    summary: str
    description: str
    overrides: tuple[str, ...] = ()  # settings for thresholds too long to step through


def _minutes(m: int) -> str:
    return f"{m}m"


def promtool_test(case: Case) -> dict[str, Any]:
    fired = {
        "exp_labels": case.labels,
        "exp_annotations": {
            "summary": case.summary,
            "description": case.description,
            "runbook_url": f"{RUNBOOKS}/{case.alert}.md",
        },
    }
    return {
        "interval": "1m",
        "input_series": case.inputs,
        "alert_rule_test": [
            {"eval_time": _minutes(case.before), "alertname": case.alert, "exp_alerts": []},
            {"eval_time": _minutes(case.at), "alertname": case.alert, "exp_alerts": [fired]},
            {"eval_time": _minutes(case.after), "alertname": case.alert, "exp_alerts": []},
        ],
    }


def check_fires_after_for_and_resolves(case: Case, tmp_path: Path, promtool: str) -> None:
    """Not firing one evaluation before its ``for:`` has elapsed, firing once it has, resolved
    after the condition clears: promtool fails with its own report otherwise."""
    assert case.before < case.at < case.after
    settings = with_overrides(AlertSettings(), case.overrides)
    run_promtool(promtool, tmp_path, [promtool_test(case)], settings)


def check_never_fires(
    alert: str, inputs: list[dict[str, str]], at: int, tmp_path: Path, promtool: str
) -> None:
    test = {
        "interval": "1m",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": _minutes(at), "alertname": alert, "exp_alerts": []}],
    }
    run_promtool(promtool, tmp_path, [test])
