"""`fluxwatch exporter`: flags override the config file's exporter: section; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxwatch.cli import build_parser, main


def _settings(argv: list[str]):  # type: ignore[no-untyped-def]
    from fluxwatch.commands.exporter import settings_from_args

    return settings_from_args(build_parser().parse_args(["exporter", *argv]))


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(
        "exporter:\n"
        "  listen: 0.0.0.0:9000\n"
        "  per_object: none\n"
        "  contexts: [a]\n"
        "  watch:\n"
        "    inactivity_timeout_seconds: 42\n"
        "bridge: null\n"
    )
    settings = _settings(
        ["--config", str(config), "--per-object", "not-ready", "--context", "b", "--context", "c"]
    )
    assert settings.listen == "0.0.0.0:9000"  # from the file
    assert settings.per_object == "not-ready"  # flag wins
    assert settings.contexts == ("b", "c")
    assert settings.watch.inactivity_timeout_seconds == 42.0


ERRORS = [
    (
        "bad-key-path",
        "exporter:\n  clusters:\n    - context: 7\n",
        [],
        "exporter.clusters[0].context",
    ),
    ("unknown-top-level", "exporters: {}\n", [], "exporters: unknown key"),
    ("shard-out-of-range", "", ["--shard", "4", "--total-shards", "2"], "shard: must be between"),
]


@pytest.mark.parametrize(
    ("content", "flags", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_bad_settings_exit_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, flags: list[str], message: str
) -> None:
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(content)
    assert main(["exporter", "--config", str(config), *flags]) == 2
    assert message in capsys.readouterr().err


def test_unknown_context_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "contexts: [{name: a, context: {cluster: a, user: a}}]\n"
        "clusters: [{name: a, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: a, user: {token: t}}]\n"
    )
    code = main(["exporter", "--kubeconfig", str(kubeconfig), "--context", "b", "--listen", ":0"])
    assert code == 2
    assert "context 'b' is not in the kubeconfig" in capsys.readouterr().err
