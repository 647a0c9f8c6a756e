"""Running `promtool test rules` on generated rules: write the rule file and a test file, run it."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from alerts.render import render
from alerts.settings import AlertSettings

RUNBOOKS = "https://github.com/fluxwatch/fluxwatch/blob/main/docs/runbooks"


def series(name: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def run_promtool(
    promtool: str,
    tmp_path: Path,
    tests: Sequence[Mapping[str, Any]],
    settings: AlertSettings | None = None,
) -> None:
    """Fail with promtool's own report when any expectation does not hold."""
    (tmp_path / "rules.yml").write_text(render(settings or AlertSettings()), encoding="utf-8")
    doc = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": list(tests)}
    test_file = tmp_path / "test.yml"
    test_file.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout
