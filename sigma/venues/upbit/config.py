"""Upbit's ccxt settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma.venues.ccxt.factory import merge_config

NAME = "upbit"
#: the quote currency a SIGMA symbol trades against when no market is configured (BTC -> BTC/KRW)
QUOTE = "KRW"

DEFAULTS: dict[str, Any] = {"enableRateLimit": True}


def ccxt_options(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ccxt config: ``config`` (keys; ``urls`` for `sigma venue`) over the defaults."""
    return merge_config(DEFAULTS, config)
