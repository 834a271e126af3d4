"""The venue adapters by name: the composition root asks here for the broker a setting names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sigma.venues.binance import factory as binance
from sigma.venues.ccxt.execution import CcxtExecutionClient
from sigma.venues.upbit import factory as upbit

ClientFactory = Callable[[Mapping[str, str], Mapping[str, Any] | None], CcxtExecutionClient]

VENUES: dict[str, ClientFactory] = {
    "binance": binance.make_execution_client,
    "upbit": upbit.make_execution_client,
}


def make_ccxt_broker(
    name: str, symbols: Mapping[str, str], config: Mapping[str, Any] | None = None
) -> CcxtExecutionClient:
    """The execution client of venue ``name`` for SIGMA symbols ``symbols`` (-> the venue's
    ccxt symbols), with ccxt ``config`` (API keys; ``urls`` to reach `sigma venue`)."""
    factory = VENUES.get(name)
    if factory is None:
        raise ValueError(
            f"no venue adapter for {name!r}; known: {', '.join(sorted(VENUES))} "
            "(another ccxt venue needs its profile under sigma/venues/<name>/)"
        )
    return factory(symbols, config)
