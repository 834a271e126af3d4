"""SymbolMap: per-symbol state with bounded memory, for the price checks (the cleaner in
``sigma.feeds.cleaner``, the anomaly detector, the feed health)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

# Symbols whose state is remembered when no whitelist bounds them: plenty for any real feed, and
# a flood of made-up symbols only evicts other made-up symbols' state.
DEFAULT_MAX_SYMBOLS = 4096

K = TypeVar("K")
V = TypeVar("V")


class SymbolMap(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently used entry beyond ``max_size`` entries.

    Per-symbol state (last timestamp, price windows) lives here so that memory stays bounded
    even when a feed invents a new symbol for every frame.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SYMBOLS) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        super().__init__()
        self.max_size = max_size

    def touch(self, key: K, value: V) -> None:
        """Set ``key`` to ``value`` as the most recently used entry, evicting the oldest."""
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.max_size:
            self.popitem(last=False)
