"""`fluxwatch bridge routes test` with a truncated, malformed or wrong-shaped --event file, or a
bad --at, answers with one line naming the problem (and the accepted shapes), exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxwatch.cli import main

TESTDATA = Path(__file__).parent / "testdata"
GOOD_EVENT = TESTDATA / "event-payments-failing.json"
SHAPES = "accepted shapes: a Flux event (an object with involvedObject), an Alertmanager webhook"

CASES = [
    # (id, file content or None for a missing file, what the line must say)
    ("truncated-json", '{"involvedObject": {"kind": "Kustom', ":1:29: not valid JSON"),
    ("truncated-yaml", "involvedObject:\n  kind: [Kustomization\n", ": not valid JSON or YAML"),
    ("a-list", "- involvedObject: {}\n", ": found a list; " + SHAPES),
    ("unknown-object", '{"kind": "Kustomization", "name": "x"}', "found an object with kind, name"),
    ("empty", "", ": found an empty file; " + SHAPES),
    ("a-number", "42", ": found a number; " + SHAPES),
    ("a-string", "hello", ": found a string; " + SHAPES),
    ("missing", None, ": cannot read: No such file or directory"),
]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["bridge", "routes", "test", "--config", str(TESTDATA / "routes.yaml"), *argv])
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err.splitlines()


@pytest.mark.parametrize(("content", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_event_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    event = tmp_path / "event.json"
    if content is not None:
        event.write_text(content)
    code, err = run(["--event", str(event)], capsys)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(f"fluxwatch bridge routes test: {event}"), err[0]
    assert says in err[0]
    if content is not None:
        assert "accepted shapes" in err[0]


@pytest.mark.parametrize("at", ["yesterday", "2026-13-01T00:00:00", "12:00 tomorrow"])
def test_bad_at_is_one_line(capsys: pytest.CaptureFixture[str], at: str) -> None:
    code, err = run(["--event", str(GOOD_EVENT), "--at", at], capsys)
    assert code == 2
    assert err == [
        f"fluxwatch bridge routes test: --at {at!r} is not an ISO 8601 time "
        "(for example 2026-12-04T09:30:00Z)"
    ]


@pytest.mark.parametrize("at", ["2026-12-04T09:30:00Z", "2026-12-04T09:30:00+01:00", "2026-12-04"])
def test_good_at_is_accepted(capsys: pytest.CaptureFixture[str], at: str) -> None:
    code = main(
        [
            "bridge",
            "routes",
            "test",
            "--config",
            str(TESTDATA / "routes.yaml"),
            "--event",
            str(GOOD_EVENT),
            "--at",
            at,
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("event: ")
