"""Last-value cache: the latest message per key (e.g. the latest price per symbol).

The paper broker and the API read the current price without waiting for the next tick. Both
pub/sub implementations carry the cache so one object serves both needs.
"""

from __future__ import annotations

from typing import Protocol

from sigma.bus.base import PubSub

LAST_PRICE_KEY = "last_price:{symbol}"
"""Key of the latest price message of one symbol (format with `symbol=`)."""


class LastValueCache(Protocol):
    """Latest value per key; overwritten on each `set_last`, no history."""

    async def set_last(self, key: str, value: bytes) -> None:
        """Store `value` as the latest for `key`."""

    async def get_last(self, key: str) -> bytes | None:
        """The latest value of `key`, or None when none was stored."""


class CachingPubSub(PubSub, LastValueCache, Protocol):
    """A pub/sub bus that also keeps the last value per key (what `make_pubsub` returns)."""
