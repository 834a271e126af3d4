"""How the execution client sorts ccxt's errors, and how long it waits before trying again.

- refused: the venue answered and did not take the order (funds, an invalid order, a bad
  request, bad keys). The order is rejected with the venue's message; retrying cannot help.
- transient: the request may or may not have reached the venue (timeouts, dropped connections,
  5xx, the venue's "internal error", rate limits). Tried again after a backoff, with the same
  client order id, and the id is looked up first, so a venue never holds two orders for one
  intent.
- anything else the venue answered (an error ccxt does not sort, a duplicate client id): the
  id is looked up once; the order found is the answer, else it is rejected with the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ccxt

REFUSED: tuple[type[Exception], ...] = (
    ccxt.InsufficientFunds,
    ccxt.InvalidOrder,
    ccxt.BadRequest,
    ccxt.AuthenticationError,
    ccxt.NotSupported,
    ccxt.ArgumentsRequired,
)
#: ccxt's OperationFailed: NetworkError (timeouts, dropped connections, 5xx, rate limits) and
#: what Binance calls an internal error (-1001, "unable to process your request"), whose
#: outcome Binance documents as unknown
TRANSIENT: tuple[type[Exception], ...] = (ccxt.OperationFailed,)
RATE_LIMITED: tuple[type[Exception], ...] = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)


def refused(exc: Exception) -> bool:
    """The venue answered and did not take the order (see the module docstring)."""
    if isinstance(exc, ccxt.DuplicateOrderId | ccxt.OrderNotFound):
        return False
    return isinstance(exc, REFUSED)


def venue_message(exc: Exception) -> str:
    """The venue's error as ccxt raised it (the exchange id and the venue's body), bounded."""
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient errors: ``attempts`` tries in all, waiting
    ``base_delay`` seconds doubled per try up to ``max_delay``; a venue's ``Retry-After`` is
    honoured when longer (up to ``max_retry_after``, beyond which the error is raised)."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(f"bad retry policy {self}")

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure (1 for the first)."""
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (failures - 1))
        return max(backoff, retry_after or 0.0)


def retry_after(exc: Exception, exchange: Any) -> float | None:
    """The ``Retry-After`` seconds of the response a rate-limit error came with, if any.

    ccxt keeps the last response's headers on the exchange (``last_response_headers``), also
    when the response was an error; with requests in flight concurrently they may belong to
    another response, so this is a lower bound to honour, not an exact figure."""
    if not isinstance(exc, RATE_LIMITED):
        return None
    headers: Mapping[str, str] = getattr(exchange, "last_response_headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds: float = max(0.0, float(value))
                return seconds
            except ValueError:
                return None  # an HTTP date: fall back to the backoff
    return None
