"""Builds Upbit's execution client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma.venues.ccxt.errors import RetryPolicy
from sigma.venues.ccxt.execution import CcxtExecutionClient
from sigma.venues.ccxt.factory import make_client
from sigma.venues.upbit.config import ccxt_options
from sigma.venues.upbit.execution import UpbitProfile


def make_execution_client(
    symbols: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> CcxtExecutionClient:
    """Upbit for SIGMA symbols ``symbols`` (-> ccxt symbols), with ccxt ``config`` (``apiKey``,
    ``secret``; ``urls`` to reach `sigma venue` instead of the real venue)."""
    return make_client(UpbitProfile(), ccxt_options(config), symbols, retry)
