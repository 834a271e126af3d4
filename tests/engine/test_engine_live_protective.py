"""Protective and managed orders through the live engine (paper and live): the trigger is a
trade price instead of a bar's range, and what it sends is an ordinary reduce-only market
order with its own client order id, sent once.

The parity test feeds the live engine the ticks of each bar along the path the backtest
assumes (down first while long, up first while short: the stop before the take-profit),
passing exactly through the levels it crosses, and fills what it sends as the paper broker
does. The trades must be the backtest's on the same bars."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar, Fill, Order, OrderStatus, OrderType, Side, Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.engine.engine import EngineConfig
from sigma.engine.fill_model import FillModel
from sigma.engine.live import DispatchEngine
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy
from tests.scripted import FromBarZero

D = Decimal
T0 = pd.Timestamp("2024-01-01", tz="UTC")


class Paper:
    """The paper broker and worker in one: market orders fill at once at the price they were
    sent at (moved by slippage); resting orders only when asked to."""

    def __init__(self, fill_model: FillModel) -> None:
        self.fill_model = fill_model
        self.sent: list[tuple[Order, Decimal]] = []
        self.cancels: list[Order] = []
        self.engine: DispatchEngine | None = None
        self.hold = False  # True: market orders stay unfilled until `settle`

    def dispatch(self, order: Order, ref: Decimal) -> None:
        self.sent.append((order, ref))

    def cancel(self, order: Order) -> None:
        self.cancels.append(order)

    def settle(self, ts: pd.Timestamp) -> None:
        """Fill the market orders sent and not filled yet (unless held)."""
        assert self.engine is not None
        inflight = self.engine.inflight
        while not self.hold:
            due = [(o, ref) for o, ref in self.sent if o.client_order_id in inflight]
            if not due:
                return
            for order, ref in due:
                self.fill(order, self.fill_model.slipped(order.side, ref), ts)

    def fill(self, order: Order, price: Decimal, ts: pd.Timestamp) -> None:
        assert self.engine is not None and order.qty is not None
        fee = self.fill_model.fee(order.qty, price)
        fill = Fill(order.client_order_id, order.symbol, order.side, order.qty, price, fee, ts)
        self.engine.on_fill(fill)


def make_live(strategy: Strategy, fill_model: FillModel) -> tuple[DispatchEngine, Paper]:
    paper = Paper(fill_model)
    engine = DispatchEngine(
        strategy, "X", EngineConfig(fill_model=fill_model), paper.dispatch, cancel=paper.cancel
    )
    paper.engine = engine
    return engine, paper


def levels(engine: DispatchEngine) -> list[Decimal]:
    out = []
    for guard in engine.book.armed:
        order = guard.order
        level = order.stop_price if order.type is OrderType.STOP else order.limit_price
        assert level is not None
        out.append(level)
    return out


def leg(start: Decimal, end: Decimal, marks: list[Decimal]) -> list[Decimal]:
    """Prices from `start` to `end` passing exactly through the marks strictly between."""
    inside = [m for m in marks if min(start, end) < m < max(start, end)]
    return [*sorted(inside, reverse=end < start), end]


def feed(engine: DispatchEngine, paper: Paper, frame: pd.DataFrame) -> None:
    """Each bar as ticks along the backtest's assumed path; a last tick closes the last bar
    (what it makes the strategy send is left unfilled: the backtest has no next bar)."""
    builder = BarBuilder("X", timedelta(minutes=1))

    def tick(ts: pd.Timestamp, price: Decimal, last: bool = False) -> None:
        bar = builder.on_tick(Tick("X", ts, price, D(1)))
        if bar is not None:
            engine.on_live_bar(bar, ref_price=price)
        if last:
            return
        paper.settle(ts)
        engine.on_price(price)
        paper.settle(ts)

    for k, (_, row) in enumerate(frame.iterrows()):
        o, h, low, c = (D(repr(float(row[x]))) for x in ("open", "high", "low", "close"))
        start = T0 + pd.Timedelta(minutes=k)
        tick(start, o)
        path: list[Decimal] = []
        first, second = (h, low) if engine.position_qty("X") < 0 else (low, h)
        path += leg(o, first, levels(engine))
        path += leg(first, second, levels(engine))
        path += leg(second, c, levels(engine))
        for n, price in enumerate(path, start=1):
            tick(start + pd.Timedelta(milliseconds=n), price)
    tick(T0 + pd.Timedelta(minutes=len(frame)), D(repr(float(frame["close"].iloc[-1]))), True)


class RandomProtection(Strategy):
    """Random entries with every kind of protection, closes and stop changes (seeded)."""

    name = "random_protection"

    def init(self) -> None:
        self.rng = np.random.default_rng(17)

    def on_bar(self) -> None:
        price = float(self.data.close[-1])
        roll, kind, up = self.rng.random(), int(self.rng.integers(5)), self.rng.random() < 0.5
        if self.position == 0 and roll < 0.35:
            sign = 1 if up else -1
            kwargs: dict[str, Any] = {"fraction": 0.5, "tag": f"kind{kind}"}
            if kind in (0, 3, 4):
                kwargs["sl"] = price * (1 - sign * 0.01)
            if kind in (1, 3):
                kwargs["tp"] = price * (1 + sign * 0.012)
            if kind in (2, 4):
                kwargs["trailing_pct" if kind == 2 else "trailing"] = 0.008 if kind == 2 else 0.7
            (self.buy if up else self.sell)(**kwargs)
        elif self.position != 0 and roll < 0.04:
            self.go_flat()
        elif self.position != 0 and roll < 0.08:
            self.trades[0].sl = price * (0.99 if self.position > 0 else 1.01)


def random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.006, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.002, n)), 2)
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.5, n), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.5, n), 2)
    idx = pd.date_range(T0, periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )


@pytest.mark.parametrize("commission", [D(0), D("0.001")])
def test_live_protection_trades_like_the_backtest(commission: Decimal) -> None:
    frame = random_frame(1500, seed=4)
    fm = FillModel(commission_pct=commission)
    live, paper = make_live(RandomProtection(), fm)
    feed(live, paper, frame)
    batch, _ = run_backtest(RandomProtection(), frame, symbol="X", fill_model=fm)
    reasons = {t.exit_reason for t in batch.trades}
    assert reasons == {"signal", "stop_loss", "take_profit", "trailing_stop"}

    def rows(trades: list[Any]) -> list[tuple[Any, ...]]:
        return [
            (t.qty, t.entry_price, t.exit_price, t.pnl, t.exit_reason, t.tag, t.entry_ts, t.exit_ts)
            for t in trades
        ]

    # Times: the backtest stamps a fill with its bar, the live engine with its tick.
    assert [r[:6] for r in rows(live.trades)] == [r[:6] for r in rows(batch.trades)]
    assert live.portfolio.cash == batch.final_cash
    assert live.portfolio.qty("X") == batch.final_position
    # Every protective trigger sent one order, with its own id, filled once.
    children = [o for o in live.orders if o.reason != "signal" and o.type is OrderType.MARKET]
    protective_exits = [t for t in live.trades if t.exit_reason != "signal"]
    assert len(children) == len(protective_exits)
    assert len({o.client_order_id for o in children}) == len(children)
    assert all(o.parent_id and o.reduce_only and o.status is OrderStatus.FILLED for o in children)


def test_stops_slip_live_as_in_the_backtest() -> None:
    rows = [(100, 100, 100, 100), (100, 102, 98, 101), (101, 103, 94, 96), (96, 96, 96, 96)]
    idx = pd.date_range(T0, periods=len(rows), freq="1min", tz="UTC", name="ts")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=idx, dtype=float)
    frame["volume"] = 1.0

    class Once(FromBarZero):
        name = "once"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                self.buy(3, sl=95, tag="t")

    fm = FillModel(slippage_bps=D(50), commission_pct=D("0.001"))
    live, paper = make_live(Once(), fm)
    feed(live, paper, frame)
    batch, _ = run_backtest(Once(), frame, symbol="X", fill_model=fm)
    (mine,), (theirs,) = live.trades, batch.trades
    assert (mine.exit_price, mine.pnl, mine.exit_reason) == (D("94.525"), theirs.pnl, "stop_loss")
    assert (theirs.exit_price, theirs.exit_reason, theirs.tag) == (D("94.525"), "stop_loss", "t")


# --- the live mechanics ------------------------------------------------------------------------
class Hold(FromBarZero):
    """Buys 10 with a bracket on its first bar, then does nothing."""

    name = "hold"

    def on_bar(self) -> None:
        if self.bar_index == 0:
            self.buy(10, sl=95, tp=110, tag="b")


def bar(k: int, price: float) -> Bar:
    p = D(repr(price))
    return Bar("X", (T0 + pd.Timedelta(minutes=k)).to_pydatetime(), p, p, p, p)


def opened(fm: FillModel | None = None) -> tuple[DispatchEngine, Paper]:
    """A live engine holding 10 bought at 100 with its stop at 95 and target at 110."""
    engine, paper = make_live(Hold(), fm or FillModel())
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    paper.settle(T0)
    assert engine.portfolio.qty("X") == D(10)
    assert sorted(levels(engine)) == [D(95), D(110)]
    paper.sent.clear()
    return engine, paper


def test_a_trigger_sends_one_order_however_often_the_price_is_seen_again() -> None:
    engine, paper = opened()
    paper.hold = True
    for price in (D(96), D(95), D("94.5"), D(94)):
        engine.on_price(price)
    engine.on_live_bar(bar(1, 94), ref_price=D(93))
    engine.on_price(D(93))
    ((child, ref),) = paper.sent  # one order, at the price that triggered it
    assert (child.side, child.qty, child.type, ref) == (Side.SELL, D(10), OrderType.MARKET, D(95))
    assert child.reduce_only and child.reason == "stop_loss" and child.tag == "b"
    assert engine.position_qty("X") == 0 and engine.portfolio.qty("X") == D(10)
    # The take-profit is not sent while the position is on its way out.
    engine.on_price(D(111))
    assert len(paper.sent) == 1
    paper.fill(child, D(95), T0)
    (trade,) = engine.trades
    assert (trade.exit_price, trade.exit_reason, trade.tag) == (D(95), "stop_loss", "b")
    stop, target = (o for o in engine.orders if o.is_protective)
    assert (stop.status, stop.filled_qty, target.status) == (
        OrderStatus.FILLED,
        D(10),
        OrderStatus.CANCELLED,
    )
    assert engine.book.armed == [] and engine._children == {}


def test_a_refused_trigger_is_armed_again_from_the_next_bar() -> None:
    engine, paper = opened()
    paper.hold = True
    engine.on_price(D(94))
    ((first, _),) = paper.sent
    engine.on_rejected(first.client_order_id, "risk: kill switch")
    engine.on_price(D(93))  # the same bar: not again
    assert len(paper.sent) == 1
    engine.on_live_bar(bar(1, 93), ref_price=D(92))
    engine.on_price(D(92))
    (_, (second, ref)) = paper.sent
    assert second.client_order_id != first.client_order_id and ref == D(92)
    assert second.reason == "stop_loss" and second.qty == D(10)


def test_a_position_closed_otherwise_cancels_its_protection() -> None:
    engine, paper = opened()

    class Close(FromBarZero):
        name = "hold"

        def on_bar(self) -> None:
            self.close()

    engine.strategy = Close()
    engine.strategy.bind("X", engine.data, engine)
    engine.on_live_bar(bar(1, 101), ref_price=D(101))
    engine.on_price(D(80))  # the close is in flight: nothing left to protect, nothing sent
    assert [o.reason for o, _ in paper.sent] == ["signal"]
    paper.settle(T0)
    assert engine.book.armed == [] and engine.trades[0].exit_reason == "signal"
    assert all(o.status is OrderStatus.CANCELLED for o in engine.orders if o.is_protective)


def test_a_trailing_stop_moves_at_bar_ends_by_the_best_price_traded() -> None:
    class Trail(FromBarZero):
        name = "trail"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                self.buy(1, trailing=2)

    engine, paper = make_live(Trail(), FillModel())
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    paper.settle(T0)
    for price in (D(100), D(104), D("98.5")):  # 104 inside the bar does not move it yet
        engine.on_price(price)
    assert levels(engine) == [D(98)] and paper.sent[1:] == []
    engine.on_live_bar(bar(1, 99), ref_price=D(103))
    assert levels(engine) == [D(102)]
    engine.on_price(D(103))
    engine.on_price(D(102))
    assert [(o.reason, ref) for o, ref in paper.sent[1:]] == [("trailing_stop", D(102))]


def test_live_cancel_time_in_force_and_oco() -> None:
    placed: dict[str, Order] = {}

    class Orders(FromBarZero):
        name = "orders"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                placed["ioc_missed"] = self.buy(1, limit=99, tif="IOC")
                placed["ioc"] = self.buy(1, limit=101, tif="FOK")
                placed["day"] = self.buy(1, limit=90, bars=2, sl=85)
                placed["up"] = self.buy(1, stop=110, oco="range")
                placed["down"] = self.sell(1, stop=90, oco="range")
                placed["kept"] = self.buy(1, limit=80)

    engine, paper = make_live(Orders(), FillModel())
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    # Not marketable at the price now: an IOC order is cancelled without being sent.
    assert placed["ioc_missed"].status is OrderStatus.CANCELLED
    assert [o.client_order_id for o, _ in paper.sent] == [
        placed[k].client_order_id for k in ("ioc", "day", "up", "down", "kept")
    ]
    assert engine.open_orders("X")[-1].reason == "stop_loss"  # waiting for "day"
    engine.on_price(D(100))  # the IOC order's own price: left alone
    engine.on_price(D(100))  # a price later it still rests: cancelled
    assert paper.cancels == [placed["ioc"]]
    paper.fill(placed["up"], D(110), T0)  # one of the OCO pair: the other is cancelled
    assert paper.cancels[-1] is placed["down"]
    engine.on_order_final(placed["down"].client_order_id, "cancelled")
    engine.on_live_bar(bar(1, 100), ref_price=D(100))
    assert placed["day"] not in paper.cancels
    engine.on_live_bar(bar(2, 100), ref_price=D(100))  # its second bar closed: expired
    assert paper.cancels[-1] is placed["day"]
    engine.on_order_final(placed["day"].client_order_id, "cancelled")
    assert placed["day"].status is OrderStatus.CANCELLED
    assert [o.reason for o in engine.orders if o.is_protective] == ["stop_loss"]
    assert next(o for o in engine.orders if o.is_protective).status is OrderStatus.CANCELLED
    assert engine.cancel_order(placed["kept"]) and paper.cancels[-1] is placed["kept"]
    assert not engine.cancel_order(placed["ioc_missed"])


def test_an_operator_can_cancel_a_protective_order_by_id() -> None:
    engine, _ = opened()
    stop = next(o for o in engine.orders if o.reason == "stop_loss")
    assert engine.cancel(stop.client_order_id)
    assert stop.status is OrderStatus.CANCELLED and sorted(levels(engine)) == [D(110)]
    assert not engine.cancel(stop.client_order_id)


def test_the_strategy_sees_its_trade_and_protection_live() -> None:
    seen: list[Any] = []

    class Look(FromBarZero):
        name = "hold"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                self.buy(10, sl=95, tp=110, tag="b")
                seen.append([(o.type.value, o.reason) for o in self.orders])
            elif self.bar_index == 1:
                trade = self.trades[0]
                seen.append((trade.qty, trade.entry_price, trade.tag, trade.sl, trade.tp))
                trade.sl = 97
            else:
                seen.append([(t.exit_reason, t.tag) for t in self.closed_trades])

    engine, paper = make_live(Look(), FillModel())
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    # In flight: the entry, and its protection waiting for it.
    assert seen.pop() == [("market", "signal"), ("stop", "stop_loss"), ("limit", "take_profit")]
    paper.settle(T0)
    engine.on_live_bar(bar(1, 100), ref_price=D(100))
    assert seen == [(D(10), D(100), "b", D(95), D(110))]
    assert sorted(levels(engine)) == [D(97), D(110)]
    engine.on_price(D(97))
    assert [(o.reason, o.qty) for o, _ in paper.sent[1:]] == [("stop_loss", D(10))]
    paper.settle(T0)
    engine.on_live_bar(bar(2, 97), ref_price=D(97))
    assert seen[-1] == [("stop_loss", "b")]


def test_live_protection_goes_with_an_entry_that_never_fills() -> None:
    class Entries(FromBarZero):
        name = "entries"

        def on_bar(self) -> None:
            self.buy(10, sl=95)  # refused downstream
            self.buy(10, limit=99, sl=95, tif="IOC")  # not marketable now: never sent

    engine, paper = make_live(Entries(), FillModel())
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    ((entry, _),) = paper.sent
    engine.on_rejected(entry.client_order_id, "risk: max order notional")
    statuses = [(o.reason, o.status.value) for o in engine.orders]
    assert statuses == [
        ("signal", "rejected"),
        ("stop_loss", "cancelled"),
        ("signal", "cancelled"),
        ("stop_loss", "cancelled"),
    ]
    assert engine.book.orders() == [] and engine.open_orders("X") == []


def test_a_trigger_order_the_venue_would_refuse_is_not_sent_and_retried_next_bar() -> None:
    from sigma.domain import Instrument

    lot = Instrument(
        "X", "X/USD", "X", "USD", tick_size=D("0.01"), lot_step=D(1), min_notional=D(600)
    )
    config = EngineConfig(fill_model=FillModel(), instruments={"X": lot})
    paper = Paper(FillModel())
    engine = DispatchEngine(Hold(), "X", config, paper.dispatch, cancel=paper.cancel)
    paper.engine = engine
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    paper.settle(T0)
    paper.sent.clear()
    engine.on_price(D(50))  # 10 at 50 is under the venue's minimum notional: not sent
    assert paper.sent == [] and engine.orders[-1].status is OrderStatus.REJECTED
    engine.on_price(D(49))  # not again on this bar
    assert len([o for o in engine.orders if o.reason == "stop_loss" and not o.is_protective]) == 1
    engine.on_live_bar(bar(1, 70), ref_price=D(70))
    engine.on_price(D(70))  # the next bar: tried again, and 10 at 70 may go
    assert [(o.reason, ref) for o, ref in paper.sent] == [("stop_loss", D(70))]


def test_partial_fills_and_orders_that_filled_before_their_deadline() -> None:
    engine, paper = opened()
    paper.hold = True
    engine.on_price(D(94))
    ((child, _),) = paper.sent
    stop = next(o for o in engine.orders if o.reason == "stop_loss" and o.is_protective)
    for qty in (D(4), D(6)):  # the venue fills the stop's order in two parts
        fee = D(0)
        engine.on_fill(
            Fill(
                child.client_order_id,
                "X",
                Side.SELL,
                qty,
                D(94),
                fee,
                T0 + pd.Timedelta(seconds=int(qty)),
            )
        )
        assert stop.filled_qty == (qty if qty == 4 else D(10))
        assert (stop.status is OrderStatus.FILLED) is (qty == 6)
    assert engine.portfolio.qty("X") == 0 and engine.book.armed == []

    class Bids(FromBarZero):
        name = "bids"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                self.buy(1, limit=101, tif="IOC")
                self.buy(1, limit=99, bars=1)

    engine, paper = make_live(Bids(), FillModel())
    engine.on_live_bar(bar(0, 100), ref_price=D(100))
    ioc, day = (o for o, _ in paper.sent)
    paper.fill(ioc, D(100), T0)  # filled at once: nothing to cancel
    engine.on_order_final(ioc.client_order_id, "filled")
    paper.fill(day, D(99), T0)
    engine.on_order_final(day.client_order_id, "filled")
    engine.on_price(D(100))
    engine.on_price(D(100))
    engine.on_live_bar(bar(1, 100), ref_price=D(100))
    engine.on_live_bar(bar(2, 100), ref_price=D(100))
    assert paper.cancels == [] and engine._ioc == {} and engine._expires == {}
