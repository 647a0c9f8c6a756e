"""`fluxwatch dashboards push` against a local Grafana API: creates, updates and leaves alone
exactly what it should, refuses to overwrite a concurrent edit, and reports what changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboards.build import generate
from dashboards.settings import DashboardSettings
from fluxwatch.cli import main
from tests.dashboards.fake_grafana import FakeGrafana, serving

TOKEN = "glsa_secret-token-value"
UIDS = list(generate())


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with serving(FakeGrafana(TOKEN)) as fake:
        yield fake


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def push(grafana: FakeGrafana, token_file: Path, *args: str) -> int:
    return main(
        ["dashboards", "push", "--grafana-url", grafana.url, "--token-file", str(token_file), *args]
    )


def actions(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        action, uid = line.split()[:2]
        found[uid.rstrip(":")] = action
    return found


def test_first_push_creates_the_folder_and_every_dashboard(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, token_file) == 0
    assert actions(capsys.readouterr().out) == dict.fromkeys(UIDS, "create")
    (folder,) = grafana.folders.values()
    assert folder["title"] == "Flux"
    assert sorted(grafana.dashboards) == sorted(UIDS)
    for stored in grafana.dashboards.values():
        assert stored["folderUid"] == folder["uid"]
        assert stored["dashboard"]["version"] == 1
    assert ("POST", "/api/folders") in grafana.requests


def test_second_push_changes_nothing(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, token_file) == 0
    capsys.readouterr()
    saves = grafana.requests.count(("POST", "/api/dashboards/db"))
    assert push(grafana, token_file) == 0
    assert actions(capsys.readouterr().out) == dict.fromkeys(UIDS, "unchanged")
    assert grafana.requests.count(("POST", "/api/dashboards/db")) == saves
    assert grafana.requests.count(("POST", "/api/folders")) == 1


def test_changed_settings_update_with_the_changes_named(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, token_file) == 0
    capsys.readouterr()
    assert push(grafana, token_file, "--top", "10") == 0
    out = capsys.readouterr().out
    fleet = next(line for line in out.splitlines() if " fluxwatch-fleet " in line)
    assert fleet.startswith("update")
    assert "panel changed: Top failing objects" in fleet
    assert grafana.dashboards["fluxwatch-fleet"]["dashboard"]["version"] == 2
    assert "topk(10," in str(grafana.dashboards["fluxwatch-fleet"]["dashboard"])


def test_a_dashboard_someone_else_owns_is_left_alone(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.add_folder("team", "Team")
    theirs = {"uid": "fluxwatch-fleet", "title": "Our own fleet board", "tags": [], "panels": []}
    grafana.add_dashboard(theirs, "team", version=7)
    assert push(grafana, token_file) == 1
    got = actions(capsys.readouterr().out)
    assert got.pop("fluxwatch-fleet") == "conflict"
    assert set(got.values()) == {"create"}
    stored = grafana.dashboards["fluxwatch-fleet"]
    assert stored["dashboard"]["title"] == "Our own fleet board"
    assert stored["dashboard"]["version"] == 7


def test_an_edit_made_in_grafana_meanwhile_is_not_overwritten(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, token_file) == 0
    capsys.readouterr()
    grafana.edit_after_read.add("fluxwatch-cluster")
    assert push(grafana, token_file, "--top", "10") == 1
    out = capsys.readouterr().out
    assert "failed    fluxwatch-cluster: 412 The dashboard has been changed by someone else" in out
    assert grafana.dashboards["fluxwatch-cluster"]["dashboard"]["title"] == "edited by hand"
    assert actions(out)["fluxwatch-fleet"] == "update"


def test_a_wrong_token_stops_with_401_and_never_shows_the_token(
    grafana: FakeGrafana, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("glsa_not-the-token")
    assert push(grafana, wrong) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "401" in captured.err
    assert "is the token valid?" in captured.err
    assert "glsa_" not in captured.err
    assert grafana.dashboards == {}


def test_an_unknown_folder_uid_is_reported(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert push(grafana, token_file, "--folder-uid", "nope") == 2
    err = capsys.readouterr().err
    assert "folder nope: Grafana answered 404: folder not found" in err
    assert grafana.dashboards == {}


def test_an_existing_folder_is_reused(
    grafana: FakeGrafana, token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.add_folder("obs", "Observability")
    assert push(grafana, token_file, "--folder", "Observability") == 0
    assert ("POST", "/api/folders") not in grafana.requests
    assert {d["folderUid"] for d in grafana.dashboards.values()} == {"obs"}
    assert push(grafana, token_file, "--folder-uid", "obs") == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "the file is empty"),
        ("missing", "cannot read"),
    ],
)
def test_bad_token_files_exit_2(
    grafana: FakeGrafana,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    message: str,
) -> None:
    path = tmp_path / "token"
    if setup == "empty":
        path.write_text("\n")
    assert push(grafana, path) == 2
    assert message in capsys.readouterr().err
    assert grafana.requests == []


def test_an_unreachable_grafana_exits_2(
    token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.prometheus import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["dashboards", "push", "--grafana-url", url, "--token-file", str(token_file)]) == 2
    assert url in capsys.readouterr().err


def test_settings_do_not_leak_into_ownership() -> None:
    # A different uid prefix owns different dashboards: push never reaches beyond its own UIDs.
    assert all(uid.startswith("team-") for uid in generate(DashboardSettings(uid_prefix="team")))
