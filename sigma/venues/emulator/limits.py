"""Request-rate limits the way the venues count them: weight per client address per window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated

from annotated_types import Ge, Gt, Le, MultipleOf
from pydantic import Strict

__all__ = [
    "Amount",
    "Depth",
    "Millis",
    "NonNegative",
    "Positive",
    "Seconds",
    "Verdict",
    "WeightWindow",
]

# The kinds of value the front ends' settings (BinanceSettings, UpbitSettings) take. The
# venue's config checks each setting against its field's kind (config.py derives a pydantic
# model from the dataclass), so a bound written here is the one `sigma venue` enforces.
#: a count or a rate limit: a whole number, at least 1
Positive = Annotated[int, Strict(), Gt(0)]
#: a whole number, 0 or more
NonNegative = Annotated[int, Strict(), Ge(0)]
#: a duration or an interval in milliseconds, at least 1
Millis = Annotated[int, Strict(), Gt(0)]
#: a rate-limit window in milliseconds that is a whole number of seconds (Binance names its
#: windows in seconds, minutes or days: ``X-MBX-USED-WEIGHT-1M``)
Seconds = Annotated[int, Strict(), Gt(0), MultipleOf(1000)]
#: an amount of money: a finite decimal above 0 (pydantic refuses NaN and infinities)
Amount = Annotated[Decimal, Gt(0)]
#: orderbook units in a reply (Upbit serves at most 30)
Depth = Annotated[int, Strict(), Ge(1), Le(30)]


@dataclass(frozen=True)
class Verdict:
    """What the limiter says of one request: ``status`` 200 (go on), 429 or 418, the weight
    used in the current window after it, and for a refusal the seconds to wait."""

    status: int
    used: int
    retry_after: int = 0


@dataclass
class WeightWindow:
    """``limit`` weight per ``window_ms`` and client, in fixed windows (Binance's minute).

    Over the limit the request is refused with 429 until the window ends. A client that keeps
    sending while refused is banned with 418 after ``ban_after`` more requests, for
    ``ban_ms`` (Binance: "Repeatedly violating rate limits and/or failing to back off after
    receiving 429s will result in an automated IP ban").
    """

    limit: int
    window_ms: int
    clock: Callable[[], int]
    ban_after: int = 2
    ban_ms: int = 120_000
    _used: dict[str, tuple[int, int]] = field(default_factory=dict)
    _refused: dict[str, int] = field(default_factory=dict)
    _banned: dict[str, int] = field(default_factory=dict)

    def check(self, client: str, weight: int) -> Verdict:
        """Count ``weight`` for ``client`` and say whether the request may go on."""
        now = self.clock()
        until = self._banned.get(client)
        if until is not None:
            if now < until:
                return Verdict(418, self.limit, _seconds(until - now))
            del self._banned[client]
        start = now - now % self.window_ms
        window, used = self._used.get(client, (start, 0))
        if window != start:
            window, used = start, 0
            self._refused.pop(client, None)
        retry = _seconds(window + self.window_ms - now)
        if client in self._refused:
            refused = self._refused[client] + 1
            self._refused[client] = refused
            if refused > self.ban_after:
                self._banned[client] = now + self.ban_ms
                del self._refused[client]
                return Verdict(418, used, _seconds(self.ban_ms))
            return Verdict(429, used, retry)
        if used + weight > self.limit:
            self._refused[client] = 0
            self._used[client] = (window, used)
            return Verdict(429, used, retry)
        used += weight
        self._used[client] = (window, used)
        return Verdict(200, used)

    def refund(self, client: str, weight: int) -> int:
        """Give back ``weight`` counted by :meth:`check` in the current window (a request
        that costs nothing when it succeeds); the weight used after it."""
        now = self.clock()
        window, used = self._used.get(client, (0, 0))
        if window != now - now % self.window_ms:
            return 0
        used = max(0, used - weight)
        self._used[client] = (window, used)
        return used

    def used(self, client: str) -> int:
        """Weight ``client`` has used in the current window."""
        now = self.clock()
        window, used = self._used.get(client, (0, 0))
        return used if window == now - now % self.window_ms else 0

    def forget(self, client: str) -> None:
        """Drop what is counted for ``client`` (a connection that closed)."""
        for counts in (self._used, self._refused, self._banned):
            counts.pop(client, None)

    def refuse(self, client: str) -> Verdict:
        """A 429 forced by a fault (a storm): only this request is refused, and the client is
        told to wait a second; a storm never leads to a ban by itself."""
        return Verdict(429, self.used(client), 1)


def _seconds(ms: int) -> int:
    return max(1, -(-ms // 1000))
