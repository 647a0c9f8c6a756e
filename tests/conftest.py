"""Suite-wide fixtures: real external tools, and the shared/ reference folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# shared/ sits beside the clone; a git worktree under <clone-parent>/wt/<name> finds it one up.
SHARED = next(
    (p for p in (REPO_ROOT.parent / "shared", REPO_ROOT.parent.parent / "shared") if p.is_dir()),
    REPO_ROOT.parent / "shared",
)
CRD_DIR = SHARED / "flux-crds"
EXAMPLES_DIR = SHARED / "flux-examples"


def require_tool(name: str) -> str:
    """Path of an external binary; skipped locally when missing, a failure under CI=true."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it with apt)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def crd_dir() -> Path:
    if not CRD_DIR.is_dir():
        pytest.fail(f"the Flux CRDs are expected in {CRD_DIR} (shared/ beside the clone)")
    return CRD_DIR
