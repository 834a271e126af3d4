"""Binance's ccxt settings: spot markets, and the full order response (fills with their
commissions) on placement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma.venues.ccxt.factory import merge_config

NAME = "binance"
#: the quote currency a SIGMA symbol trades against when no market is configured (BTC -> BTC/USDT)
QUOTE = "USDT"

DEFAULTS: dict[str, Any] = {
    "enableRateLimit": True,
    "options": {
        "defaultType": "spot",
        # FULL answers a new order with its fills (price, quantity, commission and asset).
        "newOrderRespType": {"market": "FULL", "limit": "FULL"},
    },
}


def ccxt_options(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ccxt config: ``config`` (keys; ``urls`` for `sigma venue`) over the defaults."""
    return merge_config(DEFAULTS, config)
