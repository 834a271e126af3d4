"""The shared half of every ccxt venue's factory and config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from sigma.venues.ccxt.errors import RetryPolicy
from sigma.venues.ccxt.execution import CcxtExecutionClient
from sigma.venues.ccxt.profile import VenueProfile


def merge_config(defaults: Mapping[str, Any], config: Mapping[str, Any] | None) -> dict[str, Any]:
    """ccxt config ``config`` over a venue's ``defaults``, ``options`` merged one level deep."""
    given = dict(config or {})
    merged = {**defaults, **given}
    merged["options"] = {**defaults.get("options", {}), **given.get("options", {})}
    return merged


def make_client(
    profile: VenueProfile,
    ccxt_config: Mapping[str, Any],
    symbols: Mapping[str, str],
    retry: RetryPolicy | None = None,
) -> CcxtExecutionClient:
    """The execution client on ccxt's async exchange ``profile.name`` built with
    ``ccxt_config``: ccxt.pro's where it has one (the same REST calls, plus the user-data
    stream the order follower listens to)."""
    cls = getattr(ccxt_pro, profile.name, None) or getattr(ccxt_async, profile.name)
    exchange = cls(dict(ccxt_config))
    return CcxtExecutionClient(exchange, profile, symbols, retry=retry)
