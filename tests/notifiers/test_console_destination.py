"""The console destination prints delivered notifications readably (used by `fluxwatch demo`)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from exporter.transitions import Transition
from notifiers.model import Notification
from notifiers.providers.console import render_text
from tests.notifiers.fakes import bridge_config, eventually, make_bridge

GOLDEN = Path(__file__).parent / "golden" / "console-grouped.txt"


def grouped() -> Notification:
    rc = {
        "kind": "GitRepository",
        "namespace": "flux-system",
        "name": "repo",
        "reason": "AuthenticationFailed",
    }
    events = [
        {
            "cluster": "prod-1",
            "kind": "GitRepository",
            "namespace": "flux-system",
            "name": "repo",
            "status": "failing",
            "reason": "AuthenticationFailed",
            "message": "ssh: handshake failed",
            "revision": "",
            "commit": "",
            "type": "failing",
            "source": "transition",
            "root_cause": rc,
        },
    ] + [
        {
            "cluster": "prod-1",
            "kind": "Kustomization",
            "namespace": "apps",
            "name": f"app-{i}",
            "status": "failing",
            "reason": "DependencyNotReady",
            "message": "dependency not ready",
            "revision": "",
            "commit": "",
            "type": "failing",
            "source": "flux",
            "root_cause": rc,
        }
        for i in range(3)
    ]
    return Notification(
        id=7,
        destination="demo",
        group_key="g",
        idempotency_key="fw_x",
        created_at=1_796_000_000.0,
        events=events,
        total_events=4,
        object_keys=frozenset(),
        clusters=("prod-1",),
    )


def test_grouped_notification_text_is_stable() -> None:
    text = render_text(grouped())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


async def test_console_prints_each_delivered_notification(tmp_path: Path) -> None:
    out = io.StringIO()
    doc = bridge_config(
        tmp_path, {"demo": {"type": "console"}}, {"destinations": ["demo"], "group_wait": "0s"}
    )
    bridge = make_bridge(doc, console=out)
    await bridge.start(serve=False)
    try:
        t = Transition(
            type="revision_applied",
            cluster="dev-1",
            timestamp=time.time(),
            kind="Kustomization",
            namespace="apps",
            name="podinfo",
            status="ready",
            reason="ReconciliationSucceeded",
            revision="main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
        )
        await bridge.accept_transition(t.as_dict())
        await eventually(lambda: "podinfo" in out.getvalue())
        assert "OK Kustomization apps/podinfo on dev-1 rev main@sha1:80272307" in out.getvalue()
    finally:
        await bridge.stop()
