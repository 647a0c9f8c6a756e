"""fluxwatch.yaml as a whole: the documented example loads; every error names file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fluxwatch.config import ConfigFileError, load_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_documented_complete_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOCS.read_text()
    block = re.search(r"```yaml\n(# fluxwatch.yaml.*?)```", text, re.S)
    catalog = re.search(r"```yaml\n(# teams.yaml.*?)```", text, re.S)
    assert block is not None
    assert catalog is not None
    for name in set(re.findall(r"_env: ([A-Z_]+)", text)):
        secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" if "WEBHOOK" in name else "s3cret"
        monkeypatch.setenv(name, secret)
    (tmp_path / "teams.yaml").write_text(catalog.group(1))
    path = tmp_path / "fluxwatch.yaml"
    path.write_text(block.group(1))

    config = load_config(path)

    assert config.exporter.per_object == "not-ready"
    assert config.exporter.kubeconfig_dir == "/etc/fluxwatch/clusters"
    assert config.bridge is not None
    assert config.bridge.destinations


BAD_FILES = [
    ("unknown-top-level", "exporters: {}\n", "exporters: unknown key"),
    ("not-a-mapping", "- a\n- b\n", "(top level): expected a mapping"),
    ("bad-yaml", "exporter: [\n", "invalid YAML at line"),
    (
        "exporter-wrong-type",
        "exporter:\n  clusters:\n    - context: 3\n",
        "exporter.clusters[0].context",
    ),
    ("exporter-bad-mode", "exporter:\n  per_object: some\n", "exporter.per_object"),
    (
        "bridge-unknown-destination",
        "bridge:\n  route:\n    destinations: [nowhere]\n",
        "bridge.route.destinations",
    ),
    (
        "bridge-inline-secret",
        "bridge:\n  destinations:\n    ci: {type: webhook, url: 'http://x', secret: whsec_abc}\n",
        "bridge.destinations.ci.secret",
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_error_names_file_and_key(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "fluxwatch.yaml"
    path.write_text(content)
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "whsec_abc" not in message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
