"""Fixtures for the multi-replica tests: a real PostgreSQL (tests/postgres.py) and a fleet of
bridge processes on it, all stopped when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.ha.replicas import BridgeFleet
from tests.postgres import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]  # fixtures shared with tests/postgres.py


@pytest.fixture
async def fleet(tmp_path: Path, postgres_dsn: str) -> AsyncIterator[BridgeFleet]:
    """Replicas and destinations are added by the test; none outlives it."""
    fleet = BridgeFleet(tmp_path / "fleet", postgres_dsn)
    try:
        yield fleet
    finally:
        await fleet.close()
