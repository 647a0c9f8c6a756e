"""`--log-format json` gives one JSON object per line; logs name the address actually bound."""

from __future__ import annotations

import json
import logging
import signal
import sys

import pytest

from fluxwatch.logs import JsonFormatter
from tests.cli.process import Fluxwatch


@pytest.mark.parametrize("where", ["before", "after"])
async def test_json_lines_name_the_real_port_when_0_was_asked(where: str) -> None:
    flags = ["--log-format", "json"]
    command = ["simulate", "--listen", "127.0.0.1:0"]
    process = await Fluxwatch.start(*(flags + command if where == "before" else command + flags))
    try:
        match = await process.wait_for_line(r"^listening: https://127\.0\.0\.1:(\d+)/")
        process.proc.send_signal(signal.SIGINT)
        assert await process.finish() == 0
    finally:
        await process.kill()
    port = int(match.group(1))
    assert port != 0
    records = [json.loads(line) for line in process.stderr]  # every line is one JSON object
    assert all(set(r) == {"time", "level", "logger", "message"} for r in records), records
    assert {
        "level": "info",
        "logger": "fluxwatch.http",
        "message": f"simulator listening on 127.0.0.1:{port} (https://127.0.0.1:{port})",
    }.items() <= next(r for r in records if r["logger"] == "fluxwatch.http").items()


async def test_log_level_after_the_subcommand_filters() -> None:
    process = await Fluxwatch.start("simulate", "--listen", "127.0.0.1:0", "--log-level", "error")
    try:
        await process.wait_for_line(r"^listening: ")
        process.proc.send_signal(signal.SIGINT)
        assert await process.finish() == 0
    finally:
        await process.kill()
    assert process.stderr == []


def test_a_traceback_stays_inside_its_json_record() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "fluxwatch.x", logging.ERROR, __file__, 1, "failed: %s", ("why",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed: why"
    assert entry["level"] == "error"
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("RuntimeError: boom")
    assert entry["time"].endswith("+00:00")
