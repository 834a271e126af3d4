"""The venue group of the settings: which venue SIGMA trades on, how ccxt reaches it, its keys
and its markets (environment: ``SIGMA_VENUE``, ``SIGMA_EXCHANGE_CONFIG``,
``SIGMA_VENUE_API_KEY``, ``SIGMA_VENUE_SECRET``, ``SIGMA_EXCHANGE_MARKETS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigma.config.settings import Settings


@dataclass(frozen=True)
class VenueSettings:
    """A configured venue.

    ``name`` is the adapter (``binance``, ``upbit``); ``live`` says whether orders go to it
    (else paper fills on its prices, a dry run); ``ccxt_config`` is what ccxt is built with,
    keys included; ``markets`` maps SIGMA symbols to the venue's ccxt symbols where the venue's
    default quote currency is not wanted."""

    name: str
    live: bool
    ccxt_config: dict[str, Any] = field(repr=False)
    markets: dict[str, str]

    @property
    def public_config(self) -> dict[str, Any]:
        """``ccxt_config`` without the keys: what the price feed needs (market data is
        public)."""
        return {k: v for k, v in self.ccxt_config.items() if k not in ("apiKey", "secret")}


def venue_settings(settings: Settings) -> VenueSettings | None:
    """The venue group of ``settings``, or None when no venue is configured."""
    group = settings.venue
    if group.venue is None:
        return None
    config = dict(group.exchange_config)
    if group.venue_api_key is not None:
        config["apiKey"] = group.venue_api_key.get_secret_value()
    if group.venue_secret is not None:
        config["secret"] = group.venue_secret.get_secret_value()
    return VenueSettings(
        name=group.venue,
        live=settings.trading.mode == "live",
        ccxt_config=config,
        markets=dict(group.exchange_markets),
    )
