"""Configuration is validated at load: one fixture per bad case, errors name the key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fluxwatch.config import ConfigFileError, load_config
from notifiers.config import config_from_mapping
from notifiers.configkit import parse_duration

TESTDATA = Path(__file__).parent / "testdata"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
BAD = sorted(TESTDATA.glob("bad-*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_names_the_key_path(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    assert expected in str(info.value)
    assert "not-a-whsec-secret" not in str(info.value)  # secrets never echoed


def test_documented_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The complete example in docs/configuration.md loads (secrets supplied by env vars)."""
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(# fluxwatch.yaml.*?)```", text, re.S)
    assert block is not None, "docs/configuration.md has no complete ```yaml example"
    for name in set(re.findall(r"_env: ([A-Z_]+)", text)):
        value = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" if "WEBHOOK" in name else "s3cret"
        monkeypatch.setenv(name, value)
    catalog = re.search(r"```yaml\n(# teams.yaml.*?)```", text, re.S)
    assert catalog is not None
    (tmp_path / "teams.yaml").write_text(catalog.group(1))
    config = config_from_mapping(yaml.safe_load(block.group(1)), base_dir=tmp_path)
    assert config.destinations
    assert config.route.routes


def test_defaults_without_a_bridge_section() -> None:
    config = config_from_mapping({"exporter": {"anything": True}})
    assert config.route.group_wait == 30.0
    assert config.route.group_interval == 300.0
    assert config.outbox.synchronous == "full"


DURATIONS = [
    ("30s", 30.0),
    ("5m", 300.0),
    ("1h30m", 5400.0),
    ("250ms", 0.25),
    (12, 12.0),
    ("7d", 604800.0),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS, ids=[str(d[0]) for d in DURATIONS])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text, "x", 0.0) == seconds


def test_secrets_come_from_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").write_text("old-key\nnew-key\n")
    monkeypatch.setenv("AM_TOKEN", "tok")
    config = config_from_mapping(
        {
            "bridge": {
                "flux": {"hmac_keys_file": "keys"},
                "alertmanager": {"bearer_token_env": "AM_TOKEN"},
            }
        },
        base_dir=tmp_path,
    )
    assert config.flux.hmac_keys == (b"old-key", b"new-key")
    assert config.alertmanager.bearer_token == "tok"
    assert "tok" not in repr(config.destinations)
