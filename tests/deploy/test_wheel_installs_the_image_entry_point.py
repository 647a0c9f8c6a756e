"""The wheel the image installs works on its own: entry point, every command, the bridge serving.

Runs from a directory outside the checkout with nothing of the repository on the path, the way
the image runs (`ENTRYPOINT ["fluxwatch"]`, `WORKDIR /var/lib/fluxwatch`).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from fluxwatch.cli import COMMANDS


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(home))
    return env


def _fluxwatch(bin_dir: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point, run from outside the checkout as the image runs it."""
    return subprocess.run(
        [str(bin_dir / "fluxwatch"), *args],
        cwd=home,
        env=_clean_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entry_point_is_installed_and_answers(installed_wheel: Path, tmp_path: Path) -> None:
    assert (installed_wheel / "fluxwatch").is_file()
    done = _fluxwatch(installed_wheel, tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fluxwatch 0.1.0"


@pytest.mark.parametrize("command", [c.__name__.rsplit(".", 1)[1] for c in COMMANDS])
def test_every_command_imports_from_the_installed_wheel(
    installed_wheel: Path, tmp_path: Path, command: str
) -> None:
    done = _fluxwatch(installed_wheel, tmp_path, command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"fluxwatch {command}" in done.stdout


def test_installed_code_comes_from_the_venv_not_the_checkout(installed_wheel: Path) -> None:
    done = subprocess.run(
        [
            str(installed_wheel / "python"),
            "-c",
            "import exporter, notifiers; print(exporter.__file__)",
        ],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "site-packages" in done.stdout


def test_wheel_carries_the_package_data(installed_wheel: Path) -> None:
    (wheel,) = installed_wheel.parent.parent.glob("fluxwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "simulator/scenarios/example.yaml" in names
    assert any(name.endswith("entry_points.txt") for name in names)


def test_bridge_serves_probes_from_the_installed_wheel(
    installed_wheel: Path, tmp_path: Path
) -> None:
    """The bridge as the chart runs it: config from a file, state in a volume, probes answered."""
    state = tmp_path / "state"
    config = tmp_path / "fluxwatch.yaml"
    config.write_text(f"bridge:\n  listen: 127.0.0.1:0\n  state_dir: {state}\n")
    with subprocess.Popen(
        [str(installed_wheel / "fluxwatch"), "bridge", "--config", str(config)],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            port = None
            deadline = time.monotonic() + 60
            while port is None and time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                port = int(match.group(1)) if match else None
            assert port is not None, "the bridge never said where it listens"
            for probe in ("healthz", "readyz"):
                url = f"http://127.0.0.1:{port}/{probe}"
                with urllib.request.urlopen(url, timeout=10) as answer:
                    assert answer.status == 200
            assert (state / "outbox.sqlite3").is_file()
        finally:
            process.terminate()
            process.wait(timeout=30)
