"""Market data: a trade/quote tick and an OHLCV bar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sigma.domain.money import Number, to_decimal, utc


@dataclass(frozen=True, slots=True)
class Tick:
    """One price observation for a symbol. `bid`/`ask` are optional quote sides."""

    symbol: str
    ts: datetime
    price: Decimal
    volume: Decimal = Decimal(0)
    bid: Decimal | None = None
    ask: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("tick symbol must not be empty")
        object.__setattr__(self, "ts", utc(self.ts))
        if self.price <= 0:
            raise ValueError(f"tick price must be positive, got {self.price}")
        if self.volume < 0:
            raise ValueError(f"tick volume must not be negative, got {self.volume}")

    @classmethod
    def of(
        cls, symbol: str, ts: datetime, price: Number, volume: Number = 0, **quote: Number
    ) -> Tick:
        """Build a tick from loose numbers, checking each one."""
        sides = {k: to_decimal(v, name=k) for k, v in quote.items()}
        return cls(
            symbol,
            ts,
            to_decimal(price, name="price"),
            to_decimal(volume, name="volume"),
            **sides,
        )


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar that opened at `ts` (UTC)."""

    symbol: str
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", utc(self.ts))
        if min(self.open, self.high, self.low, self.close) <= 0:
            raise ValueError(f"bar {self.symbol}@{self.ts.isoformat()}: prices must be positive")
        if self.high < max(self.open, self.close, self.low) or self.low > min(
            self.open, self.close
        ):
            raise ValueError(
                f"bar {self.symbol}@{self.ts.isoformat()}: high/low do not bound open/close"
            )
