"""The Upbit front end's settings and its default KRW markets."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sigma.venues.emulator.limits import Amount, Depth, Millis, NonNegative, Positive
from sigma.venues.emulator.model import MarketSpec

__all__ = ["KRW_TICKS", "UpbitSettings", "default_markets"]

#: Upbit's KRW-market price ladder since 2025-07-31 (``(from price, tick)``, ascending). Rows
#: below 100 KRW are left out: no market modelled here trades that low.
KRW_TICKS: tuple[tuple[Decimal, Decimal], ...] = tuple(
    (Decimal(start), Decimal(tick))
    for start, tick in (
        (0, 1),
        (5_000, 5),
        (10_000, 10),
        (50_000, 50),
        (100_000, 100),
        (500_000, 500),
        (1_000_000, 1_000),
    )
)


@dataclass(frozen=True)
class UpbitSettings:
    """Rate limits per Upbit group (requests per ``window_ms``, Upbit's second), the ban after
    repeated 429s, order totals and stream depth.

    Upbit: quotation groups (``market``, ``ticker``, ``orderbook``, ``trade``, ``candle``) 10/s
    per IP; exchange ``default`` 30/s and ``order`` 8/s per account; ``order-cancel-all`` once per
    2 s; ``websocket-connect`` 5/s per IP, or per account with authentication;
    ``websocket-message`` 5/s and 100/min per connection. "429 에러 응답에도 지속적으로
    요청을 전송하는 경우 ... 418": after ``ban_after`` more requests refused with 429 the
    client is banned for ``ban_ms``.

    Each field's kind (:mod:`limits`) is what the venue's YAML may set it to
    (``upbit.settings``).
    """

    quotation_per_window: Positive = 10
    exchange_per_window: Positive = 30
    order_per_window: Positive = 8
    cancel_all_per_window: Positive = 1
    window_ms: Millis = 1_000
    #: DELETE /v1/orders/open: once per two windows
    cancel_all_windows: Positive = 2
    ban_after: NonNegative = 2
    ban_ms: Millis = 60_000
    min_order_total: Amount = Decimal(5_000)
    max_order_total: Amount = Decimal(1_000_000_000)
    #: WebSocket connection requests per window, per address (public) or account (private)
    stream_connects_per_window: Positive = 5
    #: stream data requests per window and per 60 windows (Upbit's minute), per connection
    stream_messages_per_window: Positive = 5
    stream_messages_per_minute: Positive = 100
    #: orderbook units a stream frame carries (Upbit: 15 by default, ccxt keeps 15)
    stream_book_depth: Depth = 15
    #: most orderbook units a REST reply carries (Upbit: 30)
    rest_book_depth: Depth = 30

    def __post_init__(self) -> None:
        if self.min_order_total > self.max_order_total:
            raise ValueError(
                f"min_order_total ({self.min_order_total}) must not exceed max_order_total "
                f"({self.max_order_total})"
            )


def default_markets(settings: UpbitSettings | None = None) -> list[MarketSpec]:
    """KRW-BTC (from 130,000,000 KRW) and KRW-ETH (from 4,500,000 KRW) on Upbit's KRW ladder:
    volume step 0.00000001, minimum order total 5,000 KRW; 0.01 BTC and 0.2 ETH a book level, so
    a 0.05 BTC limit fills over several price moves."""
    s = settings or UpbitSettings()
    step = Decimal("0.00000001")
    return [
        MarketSpec(
            symbol=f"KRW-{base}",
            base=base,
            quote="KRW",
            tick_sizes=KRW_TICKS,
            step_size=step,
            min_qty=step,
            max_qty=Decimal(1_000_000),
            min_price=Decimal(1_000),
            max_price=Decimal(10_000_000_000),
            min_notional=s.min_order_total,
            max_notional=s.max_order_total,
            start_price=start,
            level_qty=level,
        )
        for base, start, level in (
            ("BTC", Decimal(130_000_000), Decimal("0.01")),
            ("ETH", Decimal(4_500_000), Decimal("0.2")),
        )
    ]
