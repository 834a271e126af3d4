"""Live mode of the engine: ticks → bars → strategy → dispatched orders → fills reported back.

Filled at the decision price (what the paper broker does), the live engine must make exactly
the trades the backtest makes on the same bars.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar, Fill, Order, Side, Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.engine.engine import EngineConfig
from sigma.engine.fill_model import FillModel
from sigma.engine.live import DispatchEngine
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy
from sigma.strategies.builtin import DonchianTrend, RsiReversion, SmaCross
from sigma.strategies.indicators import sma

D = Decimal
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])), 2)
    high = np.maximum(open_, close) + 0.25
    low = np.minimum(open_, close) - 0.25
    idx = pd.date_range(T0, periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 4.0}, index=idx
    )


def ticks_of(bars: pd.DataFrame) -> list[Tick]:
    out = []
    for ts, row in bars.iterrows():
        path = [row.open, row.low, row.high, row.close]
        for k, price in enumerate(path):
            out.append(Tick("X", ts + pd.Timedelta(seconds=10 * k), D(repr(float(price))), D(1)))
    return out


def run_live(
    strategy: Strategy, bars: pd.DataFrame, fill_model: FillModel, fill_late: bool = False
) -> DispatchEngine:
    sent: list[tuple[Order, Decimal]] = []
    engine = DispatchEngine(
        strategy,
        "X",
        EngineConfig(fill_model=fill_model),
        lambda order, ref: sent.append((order, ref)),
    )
    builder = BarBuilder("X", timedelta(minutes=1))
    pending: list[Fill] = []
    for tick in ticks_of(bars):
        bar = builder.on_tick(tick)
        if bar is None:
            continue
        for fill in pending:  # a slow worker: fills land only on the next bar
            engine.on_fill(fill)
        pending.clear()
        engine.on_live_bar(bar, ref_price=tick.price)
        for order, ref in sent:
            price = fill_model.slipped(order.side, ref)
            assert order.qty is not None
            fill = Fill(
                order.client_order_id,
                "X",
                order.side,
                order.qty,
                price,
                fill_model.fee(order.qty, price),
                tick.ts,
                order.strategy,
            )
            if fill_late:
                pending.append(fill)
            else:
                engine.on_fill(fill)
                engine.on_fill(fill)  # a duplicate report is ignored
        sent.clear()
    for fill in pending:
        engine.on_fill(fill)
    return engine


@pytest.mark.parametrize("fill_late", [False, True])
@pytest.mark.parametrize("make", [lambda: SmaCross(fast=5, slow=20), lambda: DonchianTrend()])
def test_live_engine_trades_like_the_backtest(make, fill_late: bool) -> None:
    bars = frame(1500, seed=11)
    fm = FillModel(commission_pct=D("0.001"), slippage_bps=D(2))
    live = run_live(make(), bars, fm, fill_late=fill_late)
    # The last bar never closes live (no tick after it), so the backtest runs without it.
    batch, _ = run_backtest(make(), bars.iloc[:-1], symbol="X", fill_model=fm)
    assert len(batch.trades) > 5
    assert [(t.qty, t.entry_price, t.exit_price, t.pnl) for t in live.trades] == [
        (t.qty, t.entry_price, t.exit_price, t.pnl) for t in batch.trades
    ]
    assert live.portfolio.cash == batch.final_cash
    assert live.equity() == batch.final_equity
    assert live.inflight == {}


def test_inflight_orders_count_in_the_strategy_view() -> None:
    sent: list[Order] = []
    engine = DispatchEngine(
        SmaCross(fast=2, slow=3),
        "X",
        EngineConfig(initial_cash=D(1000)),
        lambda order, ref: sent.append(order),
    )
    assert engine.equity() == D(1000)
    for k, price in enumerate([10, 9, 8, 9, 10, 11]):
        bar = Bar("X", T0 + pd.Timedelta(minutes=k), D(price), D(price), D(price), D(price))
        engine.on_live_bar(bar, ref_price=D(price))
    (order,) = sent
    assert order.qty == D(100)  # all-in at the decision price 10 (fractions resolved to qty)
    assert engine.position_qty("X") == D(100) and engine.portfolio.qty("X") == 0
    assert engine.cash() == D(0)
    engine.on_rejected(order.client_order_id, "risk: max order notional")
    assert engine.position_qty("X") == 0 and engine.cash() == D(1000)
    assert order.status.value == "rejected"


def test_orders_sized_to_zero_are_not_sent() -> None:
    sent: list[Order] = []
    engine = DispatchEngine(
        SmaCross(fast=2, slow=3),
        "X",
        EngineConfig(initial_cash=D(5)),
        lambda order, ref: sent.append(order),
    )
    for k, price in enumerate([10, 9, 8, 9, 10, 11]):
        bar = Bar("X", T0 + pd.Timedelta(minutes=k), D(price), D(price), D(price), D(price))
        engine.on_live_bar(bar, ref_price=D(price))
    assert sent == [] and engine.orders[0].status.value == "rejected"


def test_live_history_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import sigma.engine.live as live

    monkeypatch.setattr(live, "MAX_BARS", 50)
    monkeypatch.setattr(live, "MAX_RECORDS", 10)
    engine = DispatchEngine(SmaCross(fast=2, slow=3), "X", EngineConfig(), lambda o, r: None)
    for k in range(500):
        p = D(100 + (k % 7))
        engine.on_live_bar(Bar("X", T0 + pd.Timedelta(minutes=k), p, p, p, p), ref_price=p)
        assert len(engine.data) <= 100 and len(engine.orders) <= 20
    assert len(engine.orders) >= 10
    assert engine.data.close[-1] == float(100 + (499 % 7))
    assert engine.data.close[-2] == float(100 + (498 % 7))


def test_bar_builder_buckets_and_ignores_late_ticks() -> None:
    b = BarBuilder("X", timedelta(minutes=5))
    t = T0.to_pydatetime()
    assert b.on_tick(Tick("X", t + timedelta(minutes=1), D(10), D(1))) is None
    assert b.on_tick(Tick("X", t + timedelta(minutes=2), D(12), D(2))) is None
    assert b.on_tick(Tick("X", t + timedelta(minutes=3), D(9), D(1))) is None
    bar = b.on_tick(Tick("X", t + timedelta(minutes=6), D(11), D(1)))
    assert bar == Bar("X", t, D(10), D(12), D(9), D(9), D(4))
    assert b.on_tick(Tick("X", t + timedelta(minutes=4), D(50), D(1))) is None  # late
    nxt = b.on_tick(Tick("X", t + timedelta(minutes=10), D(11), D(1)))
    assert nxt is not None and nxt.high == D(11) and nxt.ts == t + timedelta(minutes=5)
    with pytest.raises(ValueError, match="timeframe must be positive"):
        BarBuilder("X", timedelta(0))


def _crossing_engine(bars: int) -> tuple[DispatchEngine, list[Order]]:
    """A crossing's live engine after `bars` minute bars of a 7-bar zigzag, and the orders it
    sent (none of them filled)."""
    sent: list[Order] = []
    engine = DispatchEngine(
        SmaCross(fast=2, slow=3), "X", EngineConfig(), lambda order, ref: sent.append(order)
    )
    for k in range(bars):
        p = D(100 + (k % 7))
        engine.on_live_bar(Bar("X", T0 + pd.Timedelta(minutes=k), p, p, p, p), ref_price=p)
    return engine, sent


def test_executions_alike_but_for_their_ids_are_each_booked_once() -> None:
    """Two executions of one order at one size, price and time (a resting order met by two
    equal trades in one millisecond) are two fills; a repeated report of either is not."""
    engine, sent = _crossing_engine(30)
    order = sent[-1]
    assert order.qty is not None and order.qty >= 2
    half = order.qty / 2

    def execution(fill_id: str) -> Fill:
        return Fill(order.client_order_id, "X", order.side, half, D(100), D(0), T0, "", fill_id)

    held = engine.portfolio.qty("X")
    for fill_id in ("t1", "t2", "t1", "t2"):
        engine.on_fill(execution(fill_id))
    assert order.filled_qty == order.qty
    assert engine.portfolio.qty("X") - held == (order.qty if order.side is Side.BUY else -order.qty)


def test_fills_find_their_orders_after_the_history_was_trimmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fills arrive late for orders sent long ago (a backlog): each marks its own order, the
    order index follows the trimmed history, and a repeated report is ignored while it is
    remembered."""
    import sigma.engine.live as live

    monkeypatch.setattr(live, "MAX_RECORDS", 10)
    monkeypatch.setattr(live, "_SEEN_FILLS", 4)
    engine, sent = _crossing_engine(300)
    assert len(sent) > 20 and len(engine.orders) <= 20
    kept = {o.client_order_id for o in engine.orders}
    assert set(engine._by_id) == kept  # trimmed with the history
    oldest, newest = engine.orders[0], engine.orders[-1]

    def fill_of(order: Order) -> Fill:
        assert order.qty is not None
        return Fill(order.client_order_id, "X", order.side, order.qty, D(100), D(0), T0)

    for order in (oldest, newest):
        engine.on_fill(fill_of(order))
        assert (order.status.value, order.filled_qty) == ("filled", order.qty)
    engine.on_fill(fill_of(newest))  # remembered: ignored
    assert newest.filled_qty == newest.qty
    gone = next(o for o in sent if o.client_order_id not in kept)
    engine.on_fill(fill_of(gone))  # its record was trimmed: booked in the account all the same
    assert engine.fills[-1].client_order_id == gone.client_order_id
    for order in engine.orders[1:6]:  # four newer reports push the first ones out
        engine.on_fill(fill_of(order))
    engine.on_fill(fill_of(oldest))  # forgotten, so booked again
    assert oldest.filled_qty == 2 * oldest.qty


# --- the first decision -------------------------------------------------------------------------
def falling_then_walk(n: int) -> pd.DataFrame:
    """Closes falling for the first bars (RSI(5)'s first value, at bar 5, is 0: oversold),
    then a seeded walk."""
    bars = frame(n, seed=4)
    head = [100.0, 99.0, 98.0, 97.0, 96.0, 95.0, 94.0]
    scale = head[-1] / bars["close"].iloc[len(head)]
    close = np.round(np.concatenate([head, bars["close"].to_numpy()[len(head) :] * scale]), 2)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return bars.assign(
        open=open_, high=np.maximum(open_, close) + 0.25, low=np.minimum(open_, close) - 0.25,
        close=close,
    )  # fmt: skip


def decided_at(orders: list[Order]) -> list[pd.Timestamp]:
    return [pd.Timestamp(o.created_at) for o in orders if o.reason == "signal"]


def test_live_decides_from_the_backtests_first_bar() -> None:
    """RSI(5) is oversold at its first value (bar 5): the backtest, as backtesting.py, decides
    from bar 6, and so does the live engine fed the same bars one by one."""
    bars = falling_then_walk(300)
    fm = FillModel(commission_pct=D("0.001"))
    live = run_live(RsiReversion(period=5), bars, fm)
    batch, engine = run_backtest(RsiReversion(period=5), bars, symbol="X", fill_model=fm)
    assert decided_at(engine.orders)[0] == bars.index[6]
    # The last bar never closes live (no tick after it): it decides nothing there.
    assert decided_at(live.orders) == [t for t in decided_at(engine.orders) if t < bars.index[-1]]
    assert [(t.qty, t.entry_price, t.exit_price, t.pnl) for t in live.trades] == [
        (t.qty, t.entry_price, t.exit_price, t.pnl) for t in batch.trades
    ]


@pytest.mark.parametrize("stored", [6, 3])
def test_a_restart_warmed_on_stored_bars_decides_as_an_uninterrupted_run(stored: int) -> None:
    """Warmed on 6 stored bars (RSI(5)'s first value among them), the engine acts on its
    first live bar, bar 6; warmed on 3, it waits for bar 6 all the same: the rule only delays
    the first bars held."""
    bars = falling_then_walk(40)
    sent: list[Order] = []
    engine = DispatchEngine(
        RsiReversion(period=5), "X", EngineConfig(), lambda order, ref: sent.append(order)
    )
    engine.warm_up(bars.iloc[:stored])
    for ts, row in bars.iloc[stored:].iterrows():
        prices = {k: D(repr(float(row[k]))) for k in ("open", "high", "low", "close")}
        engine.on_live_bar(Bar("X", ts.to_pydatetime(), **prices), ref_price=prices["close"])
        if ts == bars.index[6]:
            assert [pd.Timestamp(o.created_at) for o in sent] == [bars.index[6]]
    assert sent and decided_at(sent)[0] == bars.index[6]


def test_a_bounded_history_does_not_wait_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the strategy acts, it acts on every bar, though the window dropped the bars its
    indicators' first values were on."""
    import sigma.engine.live as live

    monkeypatch.setattr(live, "MAX_BARS", 5)
    calls: list[int] = []

    class Every(Strategy):
        name = "every"

        def init(self) -> None:
            self.ma = self.indicator(sma, self.data.close, 3)

        def on_bar(self) -> None:
            calls.append(len(self.data))

    engine = DispatchEngine(Every(), "X", EngineConfig(), lambda o, r: None)
    for k in range(40):
        p = D(100 + (k % 7))
        engine.on_live_bar(Bar("X", T0 + pd.Timedelta(minutes=k), p, p, p, p), ref_price=p)
    assert len(calls) == 40 - 3  # from bar 3, after the average's first value (bar 2)
    assert min(calls) < 10  # the window was trimmed while it acted
