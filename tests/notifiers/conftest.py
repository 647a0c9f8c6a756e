"""Fixtures for the bridge tests: fake destinations on loopback and a running bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.notifiers import fakes
from tests.notifiers.fakes import FakeDestination
from tests.postgres import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server"]  # fixtures shared with tests/postgres.py


@pytest.fixture(params=["sqlite", "postgres"])
def outbox_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test once per outbox store: ``bridge_config`` points the bridge at a fresh
    PostgreSQL database for the second run. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("outbox_backend")``."""
    if request.param == "postgres":
        fakes.OUTBOX_POSTGRES_DSN = request.getfixturevalue("postgres_dsn")
    try:
        yield str(request.param)
    finally:
        fakes.OUTBOX_POSTGRES_DSN = None


@pytest.fixture
async def destination() -> AsyncIterator[FakeDestination]:
    dest = await FakeDestination().start()
    yield dest
    await dest.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
