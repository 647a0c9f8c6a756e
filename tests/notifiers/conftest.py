"""Fixtures for the bridge tests: fake destinations on loopback and a running bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.notifiers.fakes import FakeDestination


@pytest.fixture
async def destination() -> AsyncIterator[FakeDestination]:
    dest = await FakeDestination().start()
    yield dest
    await dest.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
