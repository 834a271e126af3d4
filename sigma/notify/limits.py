"""Dedupe window and token bucket: the two ways the notifier keeps operators from drowning."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Allows `burst` events at once, refilled at `rate` events per second.

    >>> bucket = TokenBucket(rate=1 / 60, burst=3)  # 3 at once, then one a minute
    """

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("TokenBucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def try_take(self) -> bool:
        """Take one token if there is one; False means the event should be dropped."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class DedupeWindow:
    """Remembers keys for `window` seconds after they were first let through.

    The window is not extended by suppressed repeats: a condition that stays true is re-alerted
    once per window, so a long outage is not silent.
    """

    # Expired keys are dropped only when the table grows past a threshold; cheap and bounded.
    _PRUNE_AT = 1024

    def __init__(self, window: float, *, clock: Clock = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._first_seen: dict[str, float] = {}
        self._prune_at = self._PRUNE_AT

    def is_duplicate(self, key: str) -> bool:
        """True if `key` was let through less than `window` seconds ago; otherwise record it."""
        now = self._clock()
        seen = self._first_seen.get(key)
        if seen is not None and now - seen < self.window:
            return True
        self._first_seen[key] = now
        if len(self._first_seen) > self._prune_at:
            self._first_seen = {k: t for k, t in self._first_seen.items() if now - t < self.window}
            # Doubling the threshold keeps pruning amortised O(1) when many keys are live.
            self._prune_at = max(self._PRUNE_AT, 2 * len(self._first_seen))
        return False
