"""The venue's matching engine: the synthetic book, takers and makers, stops, fees, locks,
events, client ids and filters. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import pytest
from venue_helpers import BTC_SPEC

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.klines import Candle
from sigma.venues.emulator.model import (
    BalanceEvent,
    FeeRule,
    MarketSpec,
    MarketTrade,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reason,
    Rejection,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrder,
    VenueTrade,
)
from sigma.venues.emulator.venue import Venue, wall_clock_ms

D = Decimal
SYMBOL = "BTCUSDT"
KEY, OTHER = "key-1", "key-2"
T0 = 1_700_000_000_000

# Binance's BTCUSDT as the venue models it: at 92000 the book is 2 bps wide around the last
# price (half = 92000 * 2 / 20000 = 9.20) and its levels 1 bp (9.20) apart, 0.1 BTC each:
# asks 92009.20, 92018.40, 92027.60, ...; bids 91990.80, 91981.60, 91972.40, ...
BTC = BTC_SPEC


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class Recorder:
    """A journal that keeps what it was given."""

    writes: list[tuple[str, list[VenueOrder], list[VenueTrade], dict[str, Any]]] = field(
        default_factory=list
    )

    def write(
        self,
        venue: str,
        orders: Any,
        trades: Any,
        balances: dict[str, dict[str, tuple[Decimal, Decimal]]],
    ) -> None:
        snapshots = [o.snapshot() for o in orders]
        self.writes.append((venue, snapshots, list(trades), balances))


@dataclass
class Setup:
    venue: Venue
    account: Account
    other: Account
    events: list[VenueEvent]
    clock: Clock

    def place(self, side: Side, kind: OrderType, key: str = KEY, **fields: Any) -> VenueOrder:
        return self.venue.place(key, OrderRequest(SYMBOL, side, kind, **fields))

    def tick(self, price: str, qty: str = "1") -> None:
        self.venue.tick(SYMBOL, D(price), D(qty))

    def balance(self, asset: str, account: Account | None = None) -> tuple[Decimal, Decimal]:
        return (account or self.account).balance(asset)

    def kinds(self) -> list[str]:
        out = []
        for e in self.events:
            if isinstance(e, OrderEvent):
                out.append(e.kind)
            elif isinstance(e, BalanceEvent):
                out.append("BALANCE")
            else:
                out.append("PRINT")
        return out


def make(
    *,
    usdt: str = "100000",
    btc: str = "0",
    spec: MarketSpec = BTC,
    fee_rule: FeeRule = FeeRule.RECEIVED,
    maker_fee: str = "0.001",
    taker_fee: str = "0.001",
    unique_client_ids: bool = False,
    journal: Any = None,
) -> Setup:
    account = Account.funded(KEY, "secret", {spec.quote: D(usdt), spec.base: D(btc)})
    other = Account.funded(OTHER, "secret-2", {spec.quote: D(1000)})
    clock = Clock()
    venue = Venue(
        "binance",
        [spec],
        [account, other],
        maker_fee=D(maker_fee),
        taker_fee=D(taker_fee),
        fee_rule=fee_rule,
        unique_client_ids=unique_client_ids,
        clock=clock,
        journal=journal,
    )
    events: list[VenueEvent] = []
    venue.listeners.append(events.append)
    return Setup(venue, account, other, events, clock)


def status(s: Setup, order: VenueOrder) -> OrderStatus:
    """The order's status as the venue reports it now (read afresh after a change)."""
    return s.venue.order(order.account, order_id=order.order_id).status


BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT = OrderType.MARKET, OrderType.LIMIT


# ---------------------------------------------------------------- the book and takers
def test_the_synthetic_book_sits_around_the_last_price() -> None:
    s = make()
    bids, asks = s.venue.book(SYMBOL, 3)
    assert bids == [(D("91990.80"), D("0.1")), (D("91981.60"), D("0.1")), (D("91972.40"), D("0.1"))]
    assert asks == [(D("92009.20"), D("0.1")), (D("92018.40"), D("0.1")), (D("92027.60"), D("0.1"))]
    assert len(s.venue.book(SYMBOL)[0]) == 20  # `levels` a side, the default depth
    assert s.venue.last_price(SYMBOL) == D(92000)
    assert s.venue.market(SYMBOL) is BTC
    assert s.venue.markets == {SYMBOL: BTC}


def test_a_market_buy_takes_the_ask_and_pays_its_fee_in_the_base_asset() -> None:
    s = make(usdt="10000")
    order = s.place(BUY, MARKET, qty=D("0.05"))
    # 0.05 * 92009.20 = 4600.46; the fee is 0.1% of what the buy brings in: 0.00005 BTC.
    assert order.status is OrderStatus.FILLED
    assert (order.filled, order.cum_quote) == (D("0.05"), D("4600.46"))
    assert order.fees == {"BTC": D("0.00005")}
    assert order.locked == 0 and order.trade_count == 1
    assert s.balance("USDT") == (D("5399.54"), D(0))
    assert s.balance("BTC") == (D("0.04995"), D(0))
    [trade] = s.venue.trades(KEY)
    assert (trade.price, trade.qty, trade.quote_qty) == (D("92009.20"), D("0.05"), D("4600.46"))
    assert (trade.fee, trade.fee_asset, trade.maker) == (D("0.00005"), "BTC", False)
    assert trade.order_id == order.order_id and trade.client_id == order.client_id
    assert trade.time_ms == T0


def test_a_market_sell_takes_the_bid_and_pays_its_fee_in_the_quote_asset() -> None:
    s = make(usdt="0", btc="1")
    order = s.place(SELL, MARKET, qty=D("0.05"))
    # 0.05 * 91990.80 = 4599.54, fee 4.59954 USDT.
    assert order.cum_quote == D("4599.54")
    assert order.fees == {"USDT": D("4.59954")}
    assert s.balance("USDT") == (D("4594.94046"), D(0))
    assert s.balance("BTC") == (D("0.95"), D(0))


def test_a_large_taker_walks_the_levels_and_what_it_took_stays_taken_until_the_next_tick() -> None:
    s = make()
    first = s.place(BUY, MARKET, qty=D("0.25"))
    # 0.1 @ 92009.20 + 0.1 @ 92018.40 + 0.05 @ 92027.60 = 9200.92 + 9201.84 + 4601.38.
    assert [(t.price, t.qty) for t in s.venue.trades(KEY)] == [
        (D("92009.20"), D("0.1")),
        (D("92018.40"), D("0.1")),
        (D("92027.60"), D("0.05")),
    ]
    assert first.cum_quote == D("23004.14")
    assert first.fees == {"BTC": D("0.00025")}
    assert s.venue.book(SYMBOL, 2)[1] == [(D("92027.60"), D("0.05")), (D("92036.80"), D("0.1"))]
    # The next taker finds the rest of the third level, then the fourth.
    second = s.place(BUY, MARKET, qty=D("0.1"))
    assert second.cum_quote == D("0.05") * D("92027.60") + D("0.05") * D("92036.80")
    # A tick refills the book around the new last price.
    s.tick("92000")
    third = s.place(BUY, MARKET, qty=D("0.05"))
    assert third.cum_quote == D("4600.46")


def test_what_a_taker_took_comes_back_after_a_second_without_ticks() -> None:
    s = make()
    s.place(BUY, MARKET, qty=D("0.15"))
    s.clock.now += 999
    assert s.venue.book(SYMBOL, 1)[1] == [(D("92018.40"), D("0.05"))]
    s.clock.now += 1
    assert s.venue.book(SYMBOL, 1)[1] == [(D("92009.20"), D("0.1"))]
    assert s.place(BUY, MARKET, qty=D("0.05")).cum_quote == D("4600.46")


def test_a_market_order_larger_than_the_book_fills_what_is_there_and_expires() -> None:
    s = make(usdt="1000000")
    order = s.place(BUY, MARKET, qty=D("2.5"))
    assert order.status is OrderStatus.EXPIRED
    assert order.filled == D(2)  # 20 levels of 0.1
    assert order.trade_count == 20
    assert s.venue.book(SYMBOL)[1] == []
    with pytest.raises(Rejection) as caught:
        s.place(BUY, MARKET, qty=D("0.01"))
    assert caught.value.reason is Reason.NO_LIQUIDITY
    assert s.kinds()[-3:] == ["TRADE", "EXPIRED", "BALANCE"]


def test_a_market_buy_by_amount_spends_at_most_the_amount() -> None:
    s = make()
    order = s.place(BUY, MARKET, quote_qty=D(1000))
    # 1000 / 92009.20 = 0.0108684..., floored to the step: 0.01086 BTC for 999.219912 USDT.
    assert order.filled == D("0.01086")
    assert order.cum_quote == D("999.219912")
    assert order.qty is None and order.remaining == 0
    assert s.balance("USDT") == (D(100000) - D("999.219912"), D(0))
    # Spent down to less than a lot: done, as Binance reports it.
    assert order.status is OrderStatus.FILLED
    assert [e.order.status for e in s.events if isinstance(e, OrderEvent)] == [
        OrderStatus.NEW,
        OrderStatus.FILLED,
    ]
    # The amount left after a full level buys less than a step of the next: the walk stops.
    s.tick("92000")
    walk = s.place(BUY, MARKET, quote_qty=D(9201))
    assert walk.cum_quote == D("9200.92") and walk.filled == D("0.1")
    assert walk.status is OrderStatus.FILLED


def test_a_market_buy_by_an_amount_the_book_cannot_absorb_expires() -> None:
    s = make(usdt="1000000")
    order = s.place(BUY, MARKET, quote_qty=D(500000))
    assert order.filled == D(2)  # the whole book: 20 levels of 0.1
    assert order.status is OrderStatus.EXPIRED
    assert order.cum_quote < D(500000)


def test_a_market_sell_by_amount_sells_what_the_amount_buys() -> None:
    s = make(usdt="0", btc="1")
    order = s.place(SELL, MARKET, quote_qty=D(1000))
    # 1000 / 91990.80 = 0.010870..., floored: 0.01087 BTC for 999.939996 USDT.
    assert order.filled == D("0.01087")
    assert order.cum_quote == D("0.01087") * D("91990.80")


def test_a_market_order_the_balance_cannot_pay_is_refused_and_changes_nothing() -> None:
    s = make(usdt="100")
    with pytest.raises(Rejection) as caught:
        s.place(BUY, MARKET, qty=D("0.05"))
    assert caught.value.reason is Reason.INSUFFICIENT_BALANCE
    assert "USDT free 100" in str(caught.value)
    with pytest.raises(Rejection) as caught:
        s.place(SELL, MARKET, qty=D("0.05"))
    assert caught.value.reason is Reason.INSUFFICIENT_BALANCE
    assert s.venue.orders(KEY) == [] and s.events == []
    assert s.balance("USDT") == (D(100), D(0))
    # Nothing was booked, so the next order still gets the first id.
    s.account.credit("USDT", D(10000))
    assert s.place(BUY, MARKET, qty=D("0.05")).order_id == 1


# ---------------------------------------------------------------- fees under the quote rule
def test_quote_rule_market_buy_pays_the_fee_in_quote_on_top() -> None:
    s = make(usdt="10000", fee_rule=FeeRule.QUOTE, maker_fee="0.0005", taker_fee="0.0005")
    order = s.place(BUY, MARKET, qty=D("0.05"))
    # 4600.46 + 0.05% = 4600.46 + 2.30023.
    assert order.fees == {"USDT": D("2.30023")}
    assert s.balance("USDT") == (D("5397.23977"), D(0))
    assert s.balance("BTC") == (D("0.05"), D(0))


def test_quote_rule_market_buy_needs_the_fee_too() -> None:
    # Exactly the cost without the fee is not enough.
    s = make(usdt="4600.46", fee_rule=FeeRule.QUOTE, maker_fee="0.0005", taker_fee="0.0005")
    with pytest.raises(Rejection) as caught:
        s.place(BUY, MARKET, qty=D("0.05"))
    assert caught.value.reason is Reason.INSUFFICIENT_BALANCE
    # The cost and each fill's fee, rounded up to the quote's precision, is.
    s.account.credit("USDT", D("2.30023"))
    s.place(BUY, MARKET, qty=D("0.05"))
    assert s.balance("USDT") == (D(0), D(0))


def test_quote_rule_bid_reserves_the_fee_and_a_maker_fill_returns_the_fee_difference() -> None:
    s = make(usdt="10000", fee_rule=FeeRule.QUOTE, maker_fee="0.0002", taker_fee="0.0005")
    order = s.place(BUY, LIMIT, qty=D("0.03"), price=D(91000))
    # 91000 * 0.03 = 2730, reserved with the taker fee on top: 2730 * 1.0005 = 2731.365.
    assert order.locked == D("2731.365")
    assert s.balance("USDT") == (D("7268.635"), D("2731.365"))
    s.tick("91000")  # trades at the order's price: it fills as a maker, 0.02% = 0.546
    assert order.status is OrderStatus.FILLED
    assert order.fees == {"USDT": D("0.546")}
    assert s.balance("USDT") == (D("7269.454"), D(0))
    assert s.balance("BTC") == (D("0.03"), D(0))


def test_quote_rule_fee_rounding_never_takes_more_than_the_order_reserved() -> None:
    # A low-priced coin on a one-unit tick: the fee 0.05% of 4999 * 3.12345679 has 12 decimals
    # and rounds up to 8, one unit more than the bid reserved (4999 * 3.12345679 * 1.0005).
    xrp = replace(
        BTC,
        symbol=SYMBOL,
        base="XRP",
        quote="KRW",
        tick_sizes=((D(0), D(1)),),
        step_size=D("0.00000001"),
        min_qty=D("0.00000001"),
        min_price=D(1),
        min_notional=D(5000),
        start_price=D(5000),
        level_qty=D(100),
    )
    reserved = D(4999) * D("3.12345679") * D("1.0005")
    s = make(usdt="0", spec=xrp, fee_rule=FeeRule.QUOTE, maker_fee="0.0005", taker_fee="0.0005")
    s.account.credit("KRW", reserved)
    order = s.place(BUY, LIMIT, qty=D("3.12345679"), price=D(4999))
    assert s.balance("KRW") == (D(0), reserved)
    s.tick("4990")
    assert order.status is OrderStatus.FILLED
    assert s.balance("KRW") == (D(0), D(0))
    notional = D(4999) * D("3.12345679")
    assert order.fees["KRW"] == reserved - notional  # 0.05% exactly, not rounded up past it


def test_quote_rule_market_buy_checks_the_fee_as_rounded_before_it_books_anything() -> None:
    # Two-decimal quote: the fee 0.05% of 4600.46 = 2.30023 is charged as 2.31. Free 4602.765
    # covers the cost plus the rate (4602.76023) but not what the fill debits (4602.77).
    cents = replace(BTC, quote_precision=2)
    s = make(
        usdt="4602.765",
        spec=cents,
        fee_rule=FeeRule.QUOTE,
        maker_fee="0.0005",
        taker_fee="0.0005",
    )
    with pytest.raises(Rejection) as caught:
        s.place(BUY, MARKET, qty=D("0.05"))
    assert caught.value.reason is Reason.INSUFFICIENT_BALANCE
    assert s.venue.orders(KEY) == [] and s.venue.trades(KEY) == [] and s.events == []
    assert s.balance("USDT") == (D("4602.765"), D(0))
    s.account.credit("USDT", D("0.005"))
    order = s.place(BUY, MARKET, qty=D("0.05"))
    assert order.fees == {"USDT": D("2.31")}
    assert s.balance("USDT") == (D(0), D(0))


def test_fees_round_up_to_the_assets_precision() -> None:
    coarse = replace(BTC, quote_precision=2, base_precision=5)
    s = make(spec=coarse, btc="1", maker_fee="0.0005", taker_fee="0.0005")
    buy = s.place(BUY, MARKET, qty=D("0.00123"))
    # 0.00123 * 0.05% = 0.000000615 BTC, charged as 0.00001.
    assert buy.fees == {"BTC": D("0.00001")}
    sell = s.place(SELL, MARKET, qty=D("0.0001"))
    # 0.0001 * 91990.80 = 9.19908 USDT; 0.05% of it, 0.00459954, charged as 0.01.
    assert sell.fees == {"USDT": D("0.01")}
    assert s.balance("BTC") == (D(1) + D("0.00123") - D("0.00001") - D("0.0001"), D(0))


# ---------------------------------------------------------------- limit orders
def test_a_crossing_limit_buy_takes_up_to_its_price_and_rests_the_rest() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.15"), price=D("92010.00"))
    # Takes 0.1 @ 92009.20 (the next ask, 92018.40, is beyond the limit); 0.05 rests.
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert (order.filled, order.cum_quote) == (D("0.1"), D("9200.92"))
    # Held 92010 * 0.15 = 13801.50; the fill spent its share, 9201.00, and gave back the 0.08
    # it saved by filling below the limit.
    assert order.locked == D("4600.50")
    assert s.balance("USDT") == (D("86198.58"), D("4600.50"))
    assert s.balance("BTC") == (D("0.0999"), D(0))
    bids, asks = s.venue.book(SYMBOL, 2)
    assert bids[0] == (D("92010.00"), D("0.05"))  # our order, best bid now
    assert asks[0] == (D("92018.40"), D("0.1"))  # the first level was taken
    assert s.venue.open_orders(KEY) == [order]
    assert s.kinds() == ["PRINT", "NEW", "TRADE", "BALANCE"]


def test_an_ioc_limit_takes_what_crosses_and_expires_the_rest() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.15"), price=D("92010.00"), tif=TimeInForce.IOC)
    assert order.status is OrderStatus.EXPIRED
    assert order.filled == D("0.1") and order.locked == 0
    assert s.balance("USDT") == (D("90799.08"), D(0))
    assert s.venue.open_orders(KEY) == []


def test_a_fok_limit_fills_entirely_or_not_at_all() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.15"), price=D("92010.00"), tif=TimeInForce.FOK)
    assert order.status is OrderStatus.EXPIRED
    assert order.filled == 0 and s.venue.trades(KEY) == []
    assert s.balance("USDT") == (D(100000), D(0))
    assert s.kinds() == ["NEW", "EXPIRED", "BALANCE"]
    whole = s.place(BUY, LIMIT, qty=D("0.15"), price=D("92018.40"), tif=TimeInForce.FOK)
    assert whole.status is OrderStatus.FILLED
    assert whole.cum_quote == D("9200.92") + D("0.05") * D("92018.40")


def test_a_resting_limit_fills_at_its_price_a_level_per_tick_that_reaches_it() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.25"), price=D(91000))
    assert order.status is OrderStatus.NEW and order.filled == 0
    assert s.balance("USDT") == (D(77250), D(22750))  # 91000 * 0.25 held
    s.tick("91000.01")  # above the bid: nothing
    assert order.filled == 0
    s.tick("91000")  # a touch fills one level's quantity
    assert (order.status, order.filled) == (OrderStatus.PARTIALLY_FILLED, D("0.1"))
    s.tick("90000")  # through it: another level, still at the order's own price
    assert order.filled == D("0.2")
    assert order.cum_quote == D(18200)
    s.tick("91500")
    assert order.filled == D("0.2")
    s.tick("90999.99")
    assert status(s, order) is OrderStatus.FILLED
    assert order.cum_quote == D(22750)
    assert order.fees == {"BTC": D("0.00025")}  # maker 0.1%: 0.0001 + 0.0001 + 0.00005
    assert all(t.maker and t.price == D(91000) for t in s.venue.trades(KEY))
    assert s.balance("USDT") == (D(77250), D(0))
    assert s.balance("BTC") == (D("0.24975"), D(0))
    assert s.venue.open_orders(KEY) == []


def test_a_resting_sell_fills_when_the_price_rises_to_it() -> None:
    s = make(usdt="0", btc="1")
    order = s.place(SELL, LIMIT, qty=D("0.1"), price=D(93000))
    assert s.balance("BTC") == (D("0.9"), D("0.1"))
    s.tick("92999.99")
    assert order.filled == 0
    s.tick("93000")
    assert order.status is OrderStatus.FILLED
    # 9300 in, 9.3 fee (maker 0.1%, in the quote).
    assert s.balance("USDT") == (D("9290.7"), D(0))
    assert s.balance("BTC") == (D("0.9"), D(0))


def test_resting_orders_fill_best_price_first_then_oldest_first() -> None:
    s = make()
    s.account.credit("BTC", D(1))
    low = s.place(BUY, LIMIT, qty=D("0.05"), price=D(90000))
    early = s.place(BUY, LIMIT, qty=D("0.05"), price=D(91000))
    late = s.place(BUY, LIMIT, qty=D("0.05"), price=D(91000))
    sell = s.place(SELL, LIMIT, qty=D("0.05"), price=D(95000))
    low_too = s.place(BUY, LIMIT, qty=D("0.1"), price=D(90000))
    s.tick("89000")
    # One tick's counterparties (a level, 0.1) are shared down the queue: best, oldest first.
    assert [t.order_id for t in s.venue.trades(KEY)] == [early.order_id, late.order_id]
    s.tick("89000")
    assert low_too.filled == D("0.05")  # what the level left after the older one
    fills = [t.order_id for t in s.venue.trades(KEY)]
    assert fills == [early.order_id, late.order_id, low.order_id, low_too.order_id]
    assert sell.filled == 0
    s.tick("95000")
    assert sell.status is OrderStatus.FILLED


def test_the_tape_shows_ticks_and_our_fills_with_the_right_maker() -> None:
    s = make(btc="1")
    s.place(BUY, MARKET, qty=D("0.01"))  # we take the ask: the seller is the maker
    s.place(SELL, MARKET, qty=D("0.01"))  # we hit the bid: the buyer is the maker
    s.place(BUY, LIMIT, qty=D("0.01"), price=D(91000))
    s.place(SELL, LIMIT, qty=D("0.01"), price=D(93000))
    s.tick("91000")  # our resting bid is the maker
    s.tick("93000")  # our resting ask is the maker
    tape = s.venue.tape(SYMBOL)
    assert [(t.price, t.buyer_is_maker) for t in tape] == [
        (D("92009.20"), False),
        (D("91990.80"), True),
        (D(91000), False),  # the path's own print
        (D(91000), True),
        (D(93000), False),
        (D(93000), False),
    ]
    assert [t.trade_id for t in tape] == [1, 2, 3, 4, 5, 6]
    assert s.venue.tape(SYMBOL, 2) == tape[-2:]
    assert s.venue.tape(SYMBOL, 0) == []


def test_limit_maker_rests_or_is_refused_when_it_would_take() -> None:
    s = make()
    with pytest.raises(Rejection) as caught:
        s.place(BUY, OrderType.LIMIT_MAKER, qty=D("0.01"), price=D("92009.20"))
    assert caught.value.reason is Reason.WOULD_TAKE
    s.account.credit("BTC", D(1))
    with pytest.raises(Rejection) as caught:
        s.place(SELL, OrderType.LIMIT_MAKER, qty=D("0.01"), price=D("91990.80"))
    assert caught.value.reason is Reason.WOULD_TAKE
    bid = s.place(BUY, OrderType.LIMIT_MAKER, qty=D("0.01"), price=D("92009.19"))
    ask = s.place(SELL, OrderType.LIMIT_MAKER, qty=D("0.01"), price=D("91990.81"))
    assert bid.status is OrderStatus.NEW and ask.status is OrderStatus.NEW
    assert s.venue.trades(KEY) == []


# ---------------------------------------------------------------- stops
def test_a_stop_loss_sell_triggers_on_the_last_price_and_sells_at_the_bid() -> None:
    s = make(usdt="0", btc="1")
    stop = s.place(SELL, OrderType.STOP_LOSS, qty=D("0.02"), stop_price=D(90000))
    assert stop.status is OrderStatus.NEW and not stop.working
    assert s.balance("BTC") == (D("0.98"), D("0.02"))
    s.tick("90000.01")
    assert stop.filled == 0
    del s.events[:]
    s.tick("89999")
    # The bid at 89999: 89999 - 8.9999, floored to the tick, 89990.00; 0.02 of it 1799.80.
    assert status(s, stop) is OrderStatus.FILLED and stop.working
    assert stop.cum_quote == D("1799.80")
    assert stop.fees == {"USDT": D("1.7998")}
    assert s.balance("BTC") == (D("0.98"), 0)
    assert s.balance("USDT") == (D("1798.0002"), 0)
    assert s.kinds() == ["PRINT", "PRINT", "TRIGGERED", "TRADE", "BALANCE"]


def test_stop_directions_follow_binance() -> None:
    s = make(btc="1")
    # A stop-loss buy and a take-profit sell trigger on a rise; the others on a fall.
    cases = [
        (BUY, OrderType.STOP_LOSS, "93000", "91000"),
        (SELL, OrderType.STOP_LOSS, "91000", "93000"),
        (BUY, OrderType.TAKE_PROFIT, "91000", "93000"),
        (SELL, OrderType.TAKE_PROFIT, "93000", "91000"),
    ]
    placed = []
    for side, kind, ok, refused in cases:
        with pytest.raises(Rejection) as caught:
            s.place(side, kind, qty=D("0.01"), stop_price=D(refused))
        assert caught.value.reason is Reason.WOULD_TRIGGER
        placed.append(s.place(side, kind, qty=D("0.01"), stop_price=D(ok)))
    s.tick("93000")
    assert [o.status.is_final for o in placed] == [True, False, False, True]
    s.tick("91000")
    assert all(o.status is OrderStatus.FILLED for o in placed)


def test_a_stop_limit_takes_what_crosses_when_triggered_then_rests() -> None:
    s = make(usdt="0", btc="1")
    order = s.place(
        SELL,
        OrderType.STOP_LOSS_LIMIT,
        qty=D("0.25"),
        price=D(89985),
        stop_price=D(90000),
    )
    assert s.venue.book(SYMBOL)[1][0][0] == D("92009.20")  # a waiting stop is not on the book
    s.tick("89999")
    # Bids at 89999: 89990.00, then 9.00 apart: 89981.00 is below the limit.
    assert (order.status, order.filled) == (OrderStatus.PARTIALLY_FILLED, D("0.1"))
    assert order.cum_quote == D("8999.000")
    assert s.venue.book(SYMBOL, 1)[1] == [(D(89985), D("0.15"))]
    s.tick("89985")  # a sell fills when the price rises to it
    s.tick("89000")
    assert order.filled == D("0.2")
    s.tick("90000")
    assert order.status is OrderStatus.FILLED
    assert order.cum_quote == D(8999) + D("0.15") * D(89985)
    assert [t.maker for t in s.venue.trades(KEY)] == [False, True, True]
    assert s.balance("BTC") == (D("0.75"), D(0))


def test_a_take_profit_limit_buy_that_cannot_fill_after_its_trigger_rests_at_its_limit() -> None:
    s = make()
    order = s.place(
        BUY,
        OrderType.TAKE_PROFIT_LIMIT,
        qty=D("0.01"),
        price=D(90000),
        stop_price=D(91000),
    )
    assert order.locked == D(900)  # the limit price holds the funds
    s.tick("91000")
    assert order.working and order.filled == 0
    assert s.venue.open_orders(KEY) == [order]
    s.tick("90000")
    assert order.status is OrderStatus.FILLED


def test_a_triggered_stop_market_buy_the_balance_cannot_pay_expires() -> None:
    s = make(usdt="0", fee_rule=FeeRule.QUOTE, maker_fee="0.0005", taker_fee="0.0005")
    # Held at the stop price: 93000 * 0.1 * 1.0005 = 9304.65.
    s.account.credit("USDT", D("9304.65"))
    order = s.place(BUY, OrderType.STOP_LOSS, qty=D("0.1"), stop_price=D(93000))
    assert s.balance("USDT") == (D(0), D("9304.65"))
    s.tick("95000")  # gaps past the stop: 0.1 at the ask 95009.50 costs 9500.95 plus fee
    assert order.status is OrderStatus.EXPIRED
    assert order.filled == 0 and order.locked == 0
    assert s.balance("USDT") == (D("9304.65"), D(0))
    assert s.kinds()[-3:] == ["TRIGGERED", "EXPIRED", "BALANCE"]


def test_a_stop_market_sell_into_an_empty_book_expires() -> None:
    s = make(usdt="1000000", btc="1")
    stop = s.place(SELL, OrderType.STOP_LOSS, qty=D("0.1"), stop_price=D(90000))
    s.venue.tick(SYMBOL, D(89000), D(1))
    assert stop.status is OrderStatus.FILLED
    # Empty the bid side, then trigger another stop within the same tick's book.
    s.place(SELL, MARKET, qty=D("0.5"))
    s.tick("95000")
    second = s.place(SELL, OrderType.STOP_LOSS, qty=D("0.1"), stop_price=D(94000))
    s.place(SELL, MARKET, qty=D("0.2"))
    assert second.status is OrderStatus.NEW
    s.venue.tick(SYMBOL, D(93000), D(1))
    assert status(s, second) is OrderStatus.FILLED  # a tick refills the book before stops trigger


# ---------------------------------------------------------------- cancels
def test_cancel_releases_the_held_funds_and_a_final_order_cannot_be_cancelled() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.03"), price=D(91000))
    assert s.balance("USDT") == (D(97270), D(2730))
    del s.events[:]
    assert s.venue.cancel(KEY, SYMBOL, order_id=order.order_id) is order
    assert order.status is OrderStatus.CANCELED and order.locked == 0
    assert s.balance("USDT") == (D(100000), D(0))
    assert s.kinds() == ["CANCELED", "BALANCE"]
    assert s.venue.book(SYMBOL, 1)[0] == [(D("91990.80"), D("0.1"))]
    with pytest.raises(Rejection) as caught:
        s.venue.cancel(KEY, SYMBOL, order_id=order.order_id)
    assert caught.value.reason is Reason.UNKNOWN_ORDER
    s.tick("90000")
    assert s.venue.trades(KEY) == []


def test_cancel_a_partly_filled_order_keeps_its_fills() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.25"), price=D(91000))
    s.tick("91000")
    s.venue.cancel(KEY, SYMBOL, order_id=order.order_id)
    assert (order.status, order.filled) == (OrderStatus.CANCELED, D("0.1"))
    assert s.balance("USDT") == (D(90900), D(0))


def test_cancel_a_waiting_stop() -> None:
    s = make(btc="1")
    stop = s.place(SELL, OrderType.STOP_LOSS, qty=D("0.1"), stop_price=D(90000))
    s.venue.cancel(KEY, None, client_id=stop.client_id)
    assert s.balance("BTC") == (D(1), D(0))
    s.tick("80000")
    assert stop.status is OrderStatus.CANCELED and stop.filled == 0


def test_cancel_all_cancels_the_open_orders_of_the_account_on_the_symbol() -> None:
    s = make(btc="1")
    a = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    b = s.place(SELL, OrderType.STOP_LOSS, qty=D("0.01"), stop_price=D(90000))
    done = s.place(BUY, MARKET, qty=D("0.01"))
    theirs = s.place(BUY, LIMIT, key=OTHER, qty=D("0.001"), price=D(90000))
    assert s.venue.cancel_all(KEY, SYMBOL) == [a, b]
    assert {a.status, b.status} == {OrderStatus.CANCELED}
    assert done.status is OrderStatus.FILLED
    assert theirs.status is OrderStatus.NEW
    assert s.venue.cancel_all(KEY) == []
    with pytest.raises(Rejection) as caught:
        s.venue.cancel_all("nobody")
    assert caught.value.reason is Reason.BAD_REQUEST


# ---------------------------------------------------------------- ids and lookups
def test_orders_are_found_by_id_client_id_and_uuid_of_their_own_account_only() -> None:
    s = make()
    order = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="mine")
    v = s.venue
    uid = v.uuid_of(order)
    assert uid == str(uuid.uuid5(uuid.NAMESPACE_OID, "sigma-venue/binance/1"))
    assert v.order(KEY, order_id=1) is order
    assert v.order(KEY, client_id="mine") is order
    assert v.order(KEY, uid=uid) is order
    assert v.order(KEY, symbol=SYMBOL, order_id=1) is order
    for lookup in (
        {"order_id": 2},
        {"client_id": "other"},
        {"uid": str(uuid.uuid4())},
        {},
        {"symbol": "ETHUSDT", "order_id": 1},
    ):
        with pytest.raises(Rejection) as caught:
            v.order(KEY, **lookup)
        assert caught.value.reason is Reason.UNKNOWN_ORDER
    with pytest.raises(Rejection):
        v.order(OTHER, order_id=1)
    with pytest.raises(Rejection):
        v.cancel(OTHER, SYMBOL, order_id=1)


def test_an_order_without_a_client_id_gets_a_random_one() -> None:
    s = make()
    a = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    b = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    assert len(a.client_id) == 22 and a.client_id.isalnum()
    assert a.client_id != b.client_id
    assert s.venue.order(KEY, client_id=b.client_id) is b


def test_binance_refuses_a_client_id_only_while_its_order_is_open() -> None:
    s = make()
    first = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="abc")
    with pytest.raises(Rejection) as caught:
        s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="abc")
    assert caught.value.reason is Reason.DUPLICATE_ORDER
    # Another account may use it.
    s.place(BUY, LIMIT, key=OTHER, qty=D("0.001"), price=D(90000), client_id="abc")
    s.venue.cancel(KEY, SYMBOL, client_id="abc")
    second = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="abc")
    assert s.venue.order(KEY, client_id="abc") is second  # the latest
    assert first.status is OrderStatus.CANCELED


def test_upbit_refuses_a_client_id_used_before() -> None:
    s = make(unique_client_ids=True)
    s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="abc")
    s.venue.cancel(KEY, SYMBOL, client_id="abc")
    with pytest.raises(Rejection) as caught:
        s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="abc")
    assert caught.value.reason is Reason.DUPLICATE_ORDER


def test_reading_orders_and_trades_per_account_and_symbol() -> None:
    s = make()
    a = s.place(BUY, MARKET, qty=D("0.01"))
    b = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    s.place(BUY, MARKET, key=OTHER, qty=D("0.001"))
    assert s.venue.orders(KEY) == [a, b]
    assert s.venue.orders(KEY, SYMBOL) == [a, b]
    assert s.venue.orders(KEY, "ETHUSDT") == []
    assert s.venue.open_orders(KEY) == [b]
    assert s.venue.open_orders(KEY, "ETHUSDT") == []
    assert [t.order_id for t in s.venue.trades(KEY)] == [a.order_id]
    assert s.venue.trades(KEY, "ETHUSDT") == []
    assert [t.account for t in s.venue.trades(OTHER)] == [OTHER]
    assert s.venue.account(KEY) is s.account
    assert s.venue.account("nobody") is None
    assert s.venue.now_ms() == T0


# ---------------------------------------------------------------- filters
@pytest.mark.parametrize(
    ("fields", "reason", "detail"),
    [
        ({"type": LIMIT, "qty": "0.01"}, Reason.BAD_REQUEST, "price is required"),
        ({"type": OrderType.STOP_LOSS, "qty": "0.01"}, Reason.BAD_REQUEST, "stopPrice"),
        ({"type": LIMIT, "price": "90000"}, Reason.BAD_REQUEST, "quantity is required"),
        ({"type": MARKET}, Reason.BAD_REQUEST, "quantity is required"),
        ({"type": LIMIT, "qty": "0.01", "price": "0.001"}, Reason.PRICE_FILTER, "out of range"),
        ({"type": LIMIT, "qty": "0.01", "price": "1000000.01"}, Reason.PRICE_FILTER, "range"),
        ({"type": LIMIT, "qty": "0.01", "price": "90000.005"}, Reason.PRICE_FILTER, "tick"),
        (
            {"type": OrderType.STOP_LOSS, "qty": "0.01", "stop_price": "93000.001"},
            Reason.PRICE_FILTER,
            "tick",
        ),
        ({"type": LIMIT, "qty": "0.000001", "price": "90000"}, Reason.LOT_SIZE, "quantity"),
        ({"type": LIMIT, "qty": "9000.00001", "price": "90000"}, Reason.LOT_SIZE, "quantity"),
        ({"type": LIMIT, "qty": "0.010001", "price": "90000"}, Reason.LOT_SIZE, "quantity"),
        ({"type": LIMIT, "qty": "0.00005", "price": "90000"}, Reason.MIN_NOTIONAL, "4.50000 < 5"),
        ({"type": MARKET, "qty": "0.00005"}, Reason.MIN_NOTIONAL, "4.60000 < 5"),
        ({"type": MARKET, "quote_qty": "4.99"}, Reason.MIN_NOTIONAL, "4.99 < 5"),
        (
            {"type": OrderType.STOP_LOSS, "qty": "0.00005", "stop_price": "99000"},
            Reason.MIN_NOTIONAL,
            "4.95000 < 5",
        ),
    ],
)
def test_filters_refuse_bad_orders(fields: dict[str, Any], reason: Reason, detail: str) -> None:
    s = make()
    kind = fields.pop("type")
    values: dict[str, Any] = {k: D(v) for k, v in fields.items()}
    with pytest.raises(Rejection) as caught:
        s.place(BUY, kind, **values)
    assert caught.value.reason is reason
    assert detail in caught.value.detail
    assert s.venue.orders(KEY) == [] and s.events == []
    assert s.balance("USDT") == (D(100000), D(0))


def test_max_notional_max_open_orders_unknown_symbol_and_key() -> None:
    s = make(spec=replace(BTC, max_notional=D(10000), max_open_orders=2))
    with pytest.raises(Rejection) as caught:
        s.place(BUY, LIMIT, qty=D("0.2"), price=D(90000))
    assert caught.value.reason is Reason.MAX_NOTIONAL
    s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    s.place(BUY, OrderType.STOP_LOSS, qty=D("0.01"), stop_price=D(93000))
    with pytest.raises(Rejection) as caught:
        s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    assert caught.value.reason is Reason.MAX_NUM_ORDERS
    s.place(BUY, MARKET, qty=D("0.01"))  # market orders do not count against it
    s.place(BUY, LIMIT, key=OTHER, qty=D("0.001"), price=D(90000))  # nor another account's
    with pytest.raises(Rejection) as caught:
        s.venue.place(KEY, OrderRequest("ETHUSDT", BUY, LIMIT, qty=D(1), price=D(1)))
    assert caught.value.reason is Reason.UNKNOWN_SYMBOL
    with pytest.raises(Rejection) as caught:
        s.venue.place("nobody", OrderRequest(SYMBOL, BUY, LIMIT, qty=D(1), price=D(1)))
    assert caught.value.reason is Reason.BAD_REQUEST
    for read in (s.venue.market, s.venue.last_price, s.venue.candles, s.venue.tape, s.venue.book):
        with pytest.raises(Rejection):
            read("ETHUSDT")


def test_a_limit_order_the_balance_cannot_hold_is_refused() -> None:
    s = make(usdt="100")
    with pytest.raises(Rejection) as caught:
        s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    assert caught.value.reason is Reason.INSUFFICIENT_BALANCE
    with pytest.raises(Rejection) as caught:
        s.place(SELL, LIMIT, qty=D("0.01"), price=D(95000))
    assert caught.value.reason is Reason.INSUFFICIENT_BALANCE
    assert s.venue.orders(KEY) == [] and s.events == []


def test_a_tick_ladder_sets_the_price_increment_by_price() -> None:
    ladder = replace(
        BTC,
        tick_sizes=((D(0), D("0.1")), (D(100), D(1)), (D(1000), D(5))),
        min_price=D("0.1"),
        min_notional=D(1),
        start_price=D(1000),
    )
    assert [ladder.tick_at(D(p)) for p in ("5", "99.9", "100", "999", "1000", "5000")] == [
        D("0.1"),
        D("0.1"),
        D(1),
        D(1),
        D(5),
        D(5),
    ]
    s = make(spec=ladder)
    s.place(BUY, LIMIT, qty=D("0.1"), price=D(999))
    s.place(BUY, LIMIT, qty=D(1), price=D("99.9"))
    with pytest.raises(Rejection) as caught:
        s.place(BUY, LIMIT, qty=D("0.1"), price=D(1002))
    assert caught.value.reason is Reason.PRICE_FILTER
    s.tick("1002.4")  # rounded to the 5 tick
    assert s.venue.last_price(SYMBOL) == D(1000)
    s.tick("1002.6")
    assert s.venue.last_price(SYMBOL) == D(1005)


# ---------------------------------------------------------------- ticks
def test_a_tick_rounds_to_the_tick_half_even_and_never_below_the_minimum_price() -> None:
    s = make()
    for price, last in [
        ("91000.004", "91000.00"),
        ("91000.005", "91000.00"),
        ("91000.015", "91000.02"),
        ("0.001", "0.01"),
    ]:
        s.tick(price)
        assert s.venue.last_price(SYMBOL) == D(last)
    for bad in ("0", "-1", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="price must be positive"):
            s.tick(bad)


def test_a_low_last_price_leaves_bid_levels_below_the_minimum_price_out() -> None:
    s = make(spec=replace(BTC, min_price=D("0.95"), start_price=D(1), min_notional=D(0)))
    bids, asks = s.venue.book(SYMBOL)
    # Around 1.00 the half spread and the gap are one tick (0.01): bids 0.99 down to 0.95.
    assert [p for p, _ in bids] == [D("0.99"), D("0.98"), D("0.97"), D("0.96"), D("0.95")]
    assert len(asks) == 20 and asks[0][0] == D("1.01")


def test_ticks_build_candles_and_carry_the_time() -> None:
    s = make()
    s.venue.tick(SYMBOL, D(92000), D(1), time_ms=T0)
    s.venue.tick(SYMBOL, D(93000), D(2), time_ms=T0 + 1)
    s.clock.now = T0 + 60_000
    s.tick("91000", "3")
    series = s.venue.candles(SYMBOL)
    assert len(series) == 2
    candle = series.last
    assert candle is not None and candle.close == D(91000) and candle.volume == D(3)
    assert s.venue.tape(SYMBOL)[-1].time_ms == T0 + 60_000


def test_load_candles_sets_the_history_and_last_price() -> None:
    s = make()
    history = [
        Candle(T0 - 120_000, D(1), D(2), D("0.5"), D("1.5"), D(10), D(15), 4),
        Candle(T0 - 60_000, D("1.5"), D(3), D(1), D("2.5"), D(10), D(25), 4),
    ]
    s.venue.load_candles(SYMBOL, [*history, "not a candle"])
    assert len(s.venue.candles(SYMBOL)) == 2
    assert s.venue.last_price(SYMBOL) == D("2.5")
    s.venue.load_candles(SYMBOL, [])
    assert s.venue.last_price(SYMBOL) == D("2.5")
    empty = make()
    empty.venue.load_candles(SYMBOL, [])
    assert empty.venue.last_price(SYMBOL) == D(92000)


# ---------------------------------------------------------------- events and the journal
def test_events_come_in_order_with_snapshots_and_balances_per_account() -> None:
    s = make()
    other_events: list[VenueEvent] = []
    s.venue.listeners.append(other_events.append)
    order = s.place(BUY, LIMIT, qty=D("0.2"), price=D(91000), client_id="c1")
    s.tick("91000")
    s.tick("91000")
    assert s.kinds() == [
        "NEW",
        "BALANCE",
        "PRINT",
        "PRINT",
        "TRADE",
        "BALANCE",
        "PRINT",
        "PRINT",
        "TRADE",
        "BALANCE",
    ]
    assert other_events == s.events
    new, trade1, trade2 = [e for e in s.events if isinstance(e, OrderEvent)]
    # Snapshots: later changes to the order do not reach an event already sent.
    assert new.order.status is OrderStatus.NEW and new.order.filled == 0
    assert trade1.order.status is OrderStatus.PARTIALLY_FILLED
    assert trade1.order.filled == D("0.1") and trade1.order.fees == {"BTC": D("0.0001")}
    assert trade2.order.status is OrderStatus.FILLED and trade2.order is not order
    assert trade1.trade is not None and trade1.trade.trade_id == 1 and trade1.trade.maker
    balances = [e for e in s.events if isinstance(e, BalanceEvent)]
    assert balances[0].balances == {"USDT": (D(81800), D(18200))}
    assert balances[1].balances == {"BTC": (D("0.0999"), 0), "USDT": (D(81800), D(9100))}
    assert balances[2].balances["USDT"] == (D(81800), D(0))
    assert {b.account for b in balances} == {KEY}
    assert all(b.time_ms == T0 for b in balances)
    prints = [e for e in s.events if isinstance(e, MarketTrade)]
    assert [p.price for p in prints] == [D(91000)] * 4


def test_a_tick_that_fills_nothing_sends_only_its_print_and_writes_nothing() -> None:
    journal = Recorder()
    s = make(journal=journal)
    s.tick("91000")
    assert s.kinds() == ["PRINT"]
    assert journal.writes == []


def test_the_journal_gets_each_change_before_the_listeners() -> None:
    journal = Recorder()
    s = make(journal=journal)
    seen: list[int] = []
    s.venue.listeners.append(lambda _event: seen.append(len(journal.writes)))
    order = s.place(BUY, LIMIT, qty=D("0.1"), price=D(91000))
    assert seen and set(seen) == {1}
    [(venue, orders, trades, balances)] = journal.writes
    assert venue == "binance"
    assert [o.order_id for o in orders] == [order.order_id] and trades == []
    assert balances == {KEY: {"USDT": (D(90900), D(9100))}}
    s.tick("91000")
    _, orders, trades, balances = journal.writes[-1]
    assert orders[0].status is OrderStatus.FILLED
    assert [t.qty for t in trades] == [D("0.1")]
    assert balances == {KEY: {"BTC": (D("0.0999"), 0), "USDT": (D(90900), 0)}}
    with pytest.raises(Rejection):
        s.place(BUY, LIMIT, qty=D(100), price=D(91000))
    assert len(journal.writes) == 2  # a refusal writes nothing
    s.venue.cancel_all(KEY)
    assert len(journal.writes) == 2  # nor does a change that changed nothing


def test_restore_rebuilds_books_stops_trades_and_balances() -> None:
    before = make(btc="1")
    resting = before.place(BUY, LIMIT, qty=D("0.2"), price=D(91000), client_id="rest")
    stop = before.place(SELL, OrderType.STOP_LOSS, qty=D("0.1"), stop_price=D(90000))
    before.place(BUY, MARKET, qty=D("0.01"))
    before.tick("91000")
    orders = [o.snapshot() for o in before.venue.orders(KEY)]
    stray = replace(orders[0], order_id=99, symbol="ETHUSDT", client_id="stray")
    trades = before.venue.trades(KEY)
    rows = {
        KEY: [(a, *before.account.balance(a)) for a in before.account.assets()],
        "gone": [("USDT", D(1), D(0))],
    }

    after = make(usdt="0")
    after.venue.restore([*orders, stray], trades, rows)
    assert after.account.balance("USDT") == before.account.balance("USDT")
    assert after.account.balance("BTC") == before.account.balance("BTC")
    assert [o.order_id for o in after.venue.open_orders(KEY)] == [
        resting.order_id,
        stop.order_id,
        99,
    ]
    assert after.venue.trades(KEY) == trades
    assert after.venue.order(KEY, client_id="rest").order_id == resting.order_id
    # The resting order and the stop work again, and new ids follow the old ones.
    after.tick("91000")
    after.tick("89000")
    restored = after.venue.order(KEY, order_id=resting.order_id)
    assert restored.status is OrderStatus.FILLED
    assert after.venue.order(KEY, order_id=stop.order_id).status is OrderStatus.FILLED
    assert [t.trade_id for t in after.venue.trades(KEY)] == list(range(1, len(trades) + 3))
    new = after.place(BUY, MARKET, qty=D("0.001"))
    assert new.order_id == 100
    assert after.account.balance("BTC")[1] == 0 and after.account.balance("USDT")[1] == 0


def test_restored_orders_of_an_account_no_longer_configured_stay_off_the_book() -> None:
    before = make()
    resting = before.place(BUY, LIMIT, qty=D("0.1"), price=D(91000)).snapshot()
    stop = before.place(BUY, OrderType.STOP_LOSS, qty=D("0.01"), stop_price=D(93000)).snapshot()
    again = Venue("binance", [BTC], [Account.funded("someone-else", "s", {})], clock=Clock())
    again.restore([resting, stop], [], {KEY: [("USDT", D(1), D(9100))]})
    assert D(91000) not in [price for price, _ in again.book(SYMBOL, 100)[0]]
    # The path goes on through both prices without a wallet to fill into.
    again.tick(SYMBOL, D(90000), D(1))
    again.tick(SYMBOL, D(94000), D(1))
    assert resting.status is OrderStatus.NEW and stop.status is OrderStatus.NEW
    assert again.trades(KEY) == []


def test_a_listener_added_during_an_event_waits_for_the_next_change() -> None:
    s = make()
    late: list[VenueEvent] = []
    s.venue.listeners.append(lambda _e: s.venue.listeners.append(late.append))
    s.tick("91000")
    assert late == []
    s.tick("91000")
    assert len(late) == 1


def test_the_wall_clock_is_the_default_clock() -> None:
    venue = Venue("x", [BTC], [])
    before = wall_clock_ms()
    assert before <= venue.now_ms() <= wall_clock_ms()


def test_order_trades_lists_one_orders_fills_oldest_first() -> None:
    s = make()
    order = s.place(BUY, MARKET, qty=D("0.25"))
    other = s.place(BUY, LIMIT, qty=D("0.2"), price=D(91000))
    s.tick("91000")
    fills = s.venue.order_trades(order.order_id)
    assert [(t.price, t.qty) for t in fills] == [
        (D("92009.20"), D("0.1")),
        (D("92018.40"), D("0.1")),
        (D("92027.60"), D("0.05")),
    ]
    assert [t.order_id for t in s.venue.order_trades(other.order_id)] == [other.order_id]
    assert s.venue.order_trades(999) == []
    # A copy: changing it does not change the venue's record.
    fills.clear()
    assert len(s.venue.order_trades(order.order_id)) == 3
    # Restored fills are found too.
    again = make()
    again.venue.restore(s.venue.orders(KEY), s.venue.trades(KEY), {})
    assert again.venue.order_trades(order.order_id) == s.venue.order_trades(order.order_id)


def test_the_order_remembers_whether_its_client_id_was_given() -> None:
    s = make()
    given = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="mine")
    made_up = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000))
    empty = s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000), client_id="")
    assert given.client_id_given and given.client_id == "mine"
    assert not made_up.client_id_given and made_up.client_id
    assert not empty.client_id_given and len(empty.client_id) == 22


def test_a_restored_order_without_a_client_id_is_found_by_its_ids_only() -> None:
    s = make()
    order = replace(
        s.place(BUY, LIMIT, qty=D("0.01"), price=D(90000)).snapshot(), order_id=7, client_id=""
    )
    again = make()
    again.venue.restore([order], [], {})
    assert again.venue.order(KEY, order_id=7) is order
    assert again.venue.order(KEY, uid=again.venue.uuid_of(order)) is order
    with pytest.raises(Rejection):
        again.venue.order(KEY, client_id="")
