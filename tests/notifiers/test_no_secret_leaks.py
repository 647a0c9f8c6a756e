"""Secrets never surface: webhook URLs are redacted in errors, dead letters and logs."""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path

import pytest

from notifiers.config import config_from_mapping
from notifiers.http import redact_url
from tests.notifiers.fakes import (
    WHSEC,
    FakeDestination,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    parsed_flux_event,
)

TOKEN = "s3cr3t-path-token"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"https://hooks.example.com/services/{TOKEN}?sig={TOKEN}",
            "https://hooks.example.com/<redacted>",
        ),
        (f"http://user:{TOKEN}@10.0.0.1:8080/x", "http://10.0.0.1:8080/<redacted>"),
    ],
    ids=["path-and-query", "userinfo"],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


async def test_errors_and_dead_letters_never_show_the_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    dest = await FakeDestination(default=Step(403, body="forbidden")).start()
    monkeypatch.setenv("TEST_HOOK_URL", f"{dest.url}?token={TOKEN}")
    refused = f"http://127.0.0.1:{closed_port()}/hook/{TOKEN}"
    monkeypatch.setenv("TEST_REFUSED_URL", refused)
    dests = {
        "forbidden": {**fast_webhook(""), "url_env": "TEST_HOOK_URL"},
        "refused": {
            **fast_webhook(""),
            "url_env": "TEST_REFUSED_URL",
            "retry": {"initial_backoff": "10ms", "max_backoff": "10ms", "max_attempts": 2},
        },
    }
    for d in dests.values():
        del d["url"]
    route = {"destinations": ["forbidden", "refused"], "group_by": ["..."], "group_wait": "0s"}
    bridge = make_bridge(bridge_config(tmp_path, dests, route))
    await bridge.start(serve=False)
    conn = sqlite3.connect(tmp_path / "outbox.sqlite3")
    try:
        ev = parsed_flux_event(cluster="c")
        await bridge.submit([ev])

        def dead() -> int:
            return int(
                conn.execute("SELECT count(*) FROM notifications WHERE status = 'dead'").fetchone()[
                    0
                ]
            )

        await eventually(lambda: dead() == 2)
        errors = [r[0] for r in conn.execute("SELECT last_error FROM notifications")]
        assert any("HTTP 403" in e for e in errors)
        assert any("127.0.0.1" in e for e in errors)
        for text in [*errors, caplog.text]:
            assert TOKEN not in text
    finally:
        conn.close()
        await bridge.stop()
        await dest.stop()


def test_config_repr_shows_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "TEST_HMAC_KEYS": f"hmac-{TOKEN}",
        "TEST_BEARER": f"bearer-{TOKEN}",
        "TEST_PASSWORD": f"password-{TOKEN}",
        "TEST_HOOK_URL": f"https://hooks.example.com/{TOKEN}",
        "TEST_WHSEC": WHSEC,
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    hook = {"type": "webhook", "url_env": "TEST_HOOK_URL", "secret_env": "TEST_WHSEC"}
    doc = bridge_config(
        tmp_path,
        {"hook": hook},
        flux={"hmac_keys_env": "TEST_HMAC_KEYS"},
        alertmanager={
            "bearer_token_env": "TEST_BEARER",
            "basic_auth": {"username": "am", "password_env": "TEST_PASSWORD"},
        },
    )
    config = config_from_mapping(doc)
    assert config.flux.hmac_keys  # the secrets were read
    assert config.alertmanager.basic_password
    shown = repr(config)
    assert "'am'" in shown  # the repr is not just empty
    assert TOKEN not in shown
    assert WHSEC.removeprefix("whsec_") not in shown
