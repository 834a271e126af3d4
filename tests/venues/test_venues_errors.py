"""How the ccxt execution client sorts errors and paces its retries (pure)."""

from __future__ import annotations

from types import SimpleNamespace

import ccxt
import pytest

from sigma.venues.ccxt.errors import RetryPolicy, refused, retry_after, venue_message


def test_errors_are_sorted() -> None:
    for exc in (ccxt.InsufficientFunds("x"), ccxt.InvalidOrder("x"), ccxt.BadRequest("x")):
        assert refused(exc)
    # The venue may hold the order after all: looked up, not rejected outright.
    for exc in (ccxt.DuplicateOrderId("x"), ccxt.OrderNotFound("x"), ccxt.ExchangeError("x")):
        assert not refused(exc)
    assert venue_message(ccxt.InsufficientFunds("upbit {...}")) == "InsufficientFunds: upbit {...}"


def test_backoff_doubles_up_to_a_ceiling_and_honours_retry_after() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert policy.delay(1, retry_after=7) == 7
    with pytest.raises(ValueError, match="bad retry policy"):
        RetryPolicy(attempts=0)


def test_retry_after_is_read_from_a_rate_limited_response_only() -> None:
    exchange = SimpleNamespace(last_response_headers={"retry-after": "2", "Other": "x"})
    assert retry_after(ccxt.RateLimitExceeded("429"), exchange) == 2
    assert retry_after(ccxt.DDoSProtection("418"), exchange) == 2
    assert retry_after(ccxt.ExchangeNotAvailable("503"), exchange) is None
    dated = SimpleNamespace(last_response_headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})
    assert retry_after(ccxt.RateLimitExceeded("429"), dated) is None
    assert retry_after(ccxt.RateLimitExceeded("429"), SimpleNamespace()) is None
