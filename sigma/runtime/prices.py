"""The price filter's references for a feed's first tick after a start: the last stored price
per symbol, and a venue's tickers (fresher than what SIGMA stored before it stopped)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sigma.config.settings import timeframe_label
from sigma.store.handles import SessionFactory
from sigma.store.restart import StoredPrice, last_prices

if TYPE_CHECKING:  # ccxt takes a while to import; only a venue's client needs it
    from sigma.venues.ccxt.execution import CcxtExecutionClient

log = logging.getLogger(__name__)


async def venue_last_prices(client: CcxtExecutionClient) -> dict[str, StoredPrice]:
    """The venue's last traded price per symbol (its tickers); none when the venue cannot say
    (logged). Closes `client`."""
    try:
        prices = await client.last_prices()
    except Exception:
        log.warning(
            "could not read the venue's tickers; first ticks are judged against the stored prices",
            exc_info=True,
        )
        return {}
    finally:
        await client.close()
    return {symbol: StoredPrice(price, ts) for symbol, (price, ts) in prices.items()}


def stored_last_prices(sessions: SessionFactory, symbols: Iterable[str]) -> dict[str, StoredPrice]:
    """The last stored price (tick or 1-minute bar) per symbol."""
    with sessions() as session:
        return last_prices(session, list(symbols), timeframe_label(60))
