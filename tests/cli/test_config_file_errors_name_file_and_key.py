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


# (id, file content, the error after "<file>:") -- line and column of the offending key, or of
# the nearest enclosing key when the offending one is missing.
BAD_FILES = [
    ("unknown-top-level", "exporters: {}\n", "1:1: exporters: unknown key"),
    (
        "misspelled-bridge-section",
        "exporter: {}\nbrige:\n  destinations: {}\n",
        "2:1: brige: unknown key (expected one of: exporter, bridge)",
    ),
    ("not-a-mapping", "- a\n- b\n", "1:1: (top level): expected a mapping"),
    ("bad-yaml", "exporter:\n  listen: [\n", "3:1: invalid YAML"),
    (
        "exporter-wrong-type",
        "exporter:\n  clusters:\n    - context: 3\n",
        "3:7: exporter.clusters[0].context: expected a string",
    ),
    ("exporter-bad-mode", "exporter:\n  per_object: some\n", "2:3: exporter.per_object: expected"),
    (
        "exporter-bad-duration",
        "exporter:\n  watch:\n    inactivity_timeout_seconds: soon\n",
        "3:5: exporter.watch.inactivity_timeout_seconds: expected a duration such as 90s",
    ),
    (
        "bridge-unknown-destination",
        "bridge:\n  route:\n    destinations: [nowhere]\n",
        "3:20: bridge.route.destinations[0]: unknown destination 'nowhere'",
    ),
    (
        "bridge-missing-key",
        "bridge:\n  destinations:\n    ci:\n      type: webhook\n",
        "3:5: bridge.destinations.ci.url: required",
    ),
    (
        "bridge-inline-secret",
        "bridge:\n  destinations:\n    ci: {type: webhook, url: 'http://x', secret: whsec_abc}\n",
        "3:42: bridge.destinations.ci.secret: secrets are not read from the file",
    ),
    (
        "bridge-bad-duration",
        "bridge:\n  route:\n    group_wait: 30 seconds\n",
        "3:5: bridge.route.group_wait: expected a duration such as 90s",
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_error_names_file_line_column_and_key(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "fluxwatch.yaml"
    path.write_text(content)
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{expected}"), message
    assert "\n" not in message
    assert "whsec_abc" not in message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")
