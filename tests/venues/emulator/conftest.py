"""A local exchange per test: `sigma venue` on a free loopback port, prices moved by hand."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from venue_helpers import venue_config

from sigma.venues.emulator.server import VenueServer

MakeVenue = Callable[..., contextlib.AbstractAsyncContextManager[VenueServer]]


@pytest.fixture
def make_venue_server() -> MakeVenue:
    """``async with make_venue_server(binance=BinanceSettings(...)) as server:``."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[VenueServer]:
        async with VenueServer(venue_config(**overrides)).serve() as server:
            yield server

    return make


@pytest.fixture
async def venue_server(make_venue_server: MakeVenue) -> AsyncIterator[VenueServer]:
    """The default test venue, serving."""
    async with make_venue_server() as server:
        yield server
