"""Margin and liquidation: the default account stops at zero like backtesting.py, a spot
account never borrows, leverage and maintenance margin liquidate, funding is charged, and the
live engine liquidates by the same rule."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sigma.domain import Bar, Fill, Order, OrderStatus, Position, Side
from sigma.engine.engine import EngineConfig
from sigma.engine.fast import fast_backtest, simulate_targets
from sigma.engine.fill_model import FillModel
from sigma.engine.live import DispatchEngine
from sigma.engine.margin import (
    NEVER,
    AccountType,
    MarginGuard,
    MarginModel,
    MarginModelError,
)
from sigma.engine.portfolio import Portfolio
from sigma.research.backtest import run_backtest
from sigma.strategies import Strategy, load_strategies
from sigma.strategies.builtin.sma_cross import SmaCross
from tests.scripted import FromBarZero

D = Decimal
BT_DATA = Path(__import__("backtesting").__file__).parent / "test"
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def btcusd() -> pd.DataFrame:
    df = pd.read_csv(BT_DATA / "BTCUSD.csv", index_col=0, parse_dates=True)
    df = df.rename(columns=str.lower)
    df.index = pd.DatetimeIndex(df.index, tz="UTC", name="ts")
    return df[["open", "high", "low", "close", "volume"]].astype(float)


def bars_of(closes: list[float], **extra: list[float]) -> pd.DataFrame:
    """Bars opening at the previous close (the first at its own close), 1 minute apart."""
    close = np.asarray(closes, dtype=float)
    open_ = np.concatenate(([close[0]], close[:-1]))
    idx = pd.date_range(T0, periods=len(close), freq="1min", tz="UTC", name="ts")
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1.0,
        },
        index=idx,
    )
    for name, values in extra.items():
        frame[name] = values
    return frame


class Script(FromBarZero):
    """Places the orders a test scripts for given bars: {bar: [(side, qty or None), ...]}."""

    name = "script"

    def __init__(self, plan: dict[int, list[tuple[str, float | None]]]) -> None:
        super().__init__()
        self.plan = plan
        self.seen: list[int] = []

    def on_bar(self) -> None:
        self.seen.append(self.bar_index)
        for side, qty in self.plan.get(self.bar_index, []):
            if side == "long":
                self.go_long()
            elif side == "short":
                self.go_short()
            elif side == "buy":
                self.buy(qty)
            elif side == "sell":
                self.sell(qty)
            else:
                self.sell(qty, limit=float(side))


def sma_cross() -> Strategy:
    return load_strategies(entry_points_group=False).create("sma_cross", fast=10, slow=20)


# --- the default account: backtesting.py's rule ---------------------------------------------
def test_btcusd_sma_cross_stops_at_zero_like_backtesting_py() -> None:
    """The issue's case: monthly BTCUSD, SmaCross(10, 20), $10,000, 0.1% commission. The
    short entered in January 2019 runs out of money in May 2019: backtesting.py closes it at
    that close and ends at 0; so does SIGMA, with the same trades to the cent."""
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy
    from backtesting.lib import crossover
    from backtesting.test import BTCUSD, SMA

    class BtSmaCross(BtStrategy):
        def init(self) -> None:
            self.ma1 = self.I(SMA, self.data.Close, 10)
            self.ma2 = self.I(SMA, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.ma1, self.ma2):
                self.position.close()
                self.buy()
            elif crossover(self.ma2, self.ma1):
                self.position.close()
                self.sell()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Backtest(BTCUSD, BtSmaCross, commission=0.001, exclusive_orders=True).run()
    bars = btcusd()
    ours, engine = run_backtest(
        sma_cross(),
        bars,
        symbol="BTC",
        fill_model=FillModel(commission_pct=D("0.001")),
        record_ledger=True,
    )
    trades = theirs["_trades"]
    assert theirs["Equity Final [$]"] == 0.0
    assert ours.final_equity == 0
    assert [int(x) for x in trades["Size"]] == [int(t.qty) for t in ours.trades]
    assert [int(x) for x in trades["EntryBar"]] == [t.entry_bar for t in ours.trades]
    assert [int(x) for x in trades["ExitBar"]] == [t.exit_bar for t in ours.trades]
    assert [round(float(x), 2) for x in trades["PnL"]] == [
        float(t.pnl.quantize(D("0.01"))) for t in ours.trades
    ]
    liq = ours.liquidation
    assert liq is not None and liq.bar == 88 == int(trades["ExitBar"].iloc[-1])
    assert liq.ts == pd.Timestamp("2019-05-31", tz="UTC").to_pydatetime()
    assert liq.price == D("8439.24")
    assert "at or below zero" in liq.reason
    stats = ours.stats
    assert stats["liquidated"] is True
    assert stats["liquidation_bar"] == 88
    assert stats["liquidation_ts"] == "2019-05-31T00:00:00+00:00"
    assert stats["account"] == "margin x1"
    assert stats["sharpe"] is None  # ruined: no risk-adjusted figure (backtesting.py: 0)
    assert stats["max_drawdown_pct"] == pytest.approx(theirs["Max. Drawdown [%]"])
    # The curve is flat at 0 from the liquidation on, as theirs; nothing traded after it.
    assert (ours.equity.iloc[88:] == 0).all()
    np.testing.assert_allclose(
        ours.equity.to_numpy(), theirs["_equity_curve"]["Equity"].to_numpy(), atol=0.006
    )
    assert ours.trades[-1].exit_bar == 88 and ours.final_position == 0
    assert engine.orders[-1].tag == "liquidation"
    # The deficit left after the close is written off; the ledger still adds up each bar.
    assert liq.shortfall == stats["liquidation_shortfall"] > 0
    for row in engine.ledger:
        assert row.equity == row.cash + row.qty * row.price
    assert len(engine.ledger) == len(bars) and engine.ledger[-1].qty == 0


def test_the_fast_path_liquidates_as_the_engine() -> None:
    bars = btcusd()
    fm = FillModel(commission_pct=D("0.001"))
    exact, _ = run_backtest(sma_cross(), bars, symbol="BTC", fill_model=fm)
    fast = fast_backtest(SmaCross, {"fast": 10, "slow": 20}, bars, 10_000, fm)
    assert fast.n_trades == len(exact.trades)
    assert list(fast.exit_bar) == [t.exit_bar for t in exact.trades]
    assert fast.final_equity == 0.0 == float(exact.final_equity)
    np.testing.assert_allclose(fast.equity, exact.equity.to_numpy(), atol=1e-6)


def test_a_run_that_never_breaches_is_unchanged_and_reports_no_liquidation() -> None:
    result, _ = run_backtest(Script({1: [("long", None)]}), bars_of([100, 90, 120]), symbol="X")
    assert result.liquidation is None
    assert result.stats["liquidated"] is False
    assert "liquidation_bar" not in result.stats
    assert result.final_position == 111  # 10,000 // 90, filled on bar 2


# --- spot: no borrowing -----------------------------------------------------------------------
SPOT = MarginModel(AccountType.SPOT)


def test_spot_refuses_to_sell_short_and_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    plan: dict[int, list[tuple[str, float | None]]] = {
        1: [("short", None)],
        2: [("long", None)],
        4: [("short", None)],  # closes the long, the short entry is refused
        5: [("sell", 3)],
    }
    with caplog.at_level("WARNING", logger="sigma.engine.margin"):
        result, engine = run_backtest(Script(plan), bars_of([100] * 7), symbol="X", margin=SPOT)
    assert [t.qty for t in result.trades] == [D(100)]  # only the long, closed on bar 5
    assert result.final_position == 0
    assert result.stats["orders_refused_margin"] == 3
    assert result.stats["account"] == "spot"
    refused = [o for o in engine.orders if o.status is OrderStatus.REJECTED]
    assert len(refused) == 3
    said = [r.message for r in caplog.records if "do not sell short" in r.message]
    assert len(said) == 1  # logged once; the rest counted


def test_spot_cuts_a_buy_to_the_cash_it_has() -> None:
    result, _ = run_backtest(
        Script({1: [("buy", 500)]}),
        bars_of([100, 100, 100]),
        symbol="X",
        fill_model=FillModel(commission_pct=D("0.01")),
        margin=SPOT,
    )
    assert result.final_position == 99  # 99·100·1.01 = 9999 of 10,000
    assert result.final_cash == D(1)
    assert result.stats["orders_reduced_margin"] == 1


def test_resting_limit_sells_cannot_pile_up_beyond_the_buying_power() -> None:
    """The issue's −335-share short: limit sells resting and filling every bar. At leverage 1
    the short is capped at the equity; the rest is refused and counted."""
    plan: dict[int, list[tuple[str, float | None]]] = {i: [("100", 40)] for i in range(20)}
    result, _ = run_backtest(Script(plan), bars_of([100] * 25), symbol="X")
    assert result.final_position == -100  # 10,000 of equity shorts 100 at 100
    assert result.stats["orders_reduced_margin"] == 1  # the third: 20 of its 40
    assert result.stats["orders_refused_margin"] == 17
    assert result.final_equity == D(10_000)


# --- leverage and maintenance -----------------------------------------------------------------
def test_leverage_buys_a_multiple_of_equity_and_liquidates_at_zero() -> None:
    margin = MarginModel(AccountType.FUTURES, leverage=D(3))
    result, engine = run_backtest(
        Script({0: [("long", None)]}),
        bars_of([100, 100, 90, 80, 66, 70, 90]),
        symbol="X",
        margin=margin,
        record_ledger=True,
    )
    first = result.fills[0]
    assert first.qty == 300 and first.price == 100
    liq = result.liquidation
    assert liq is not None and liq.bar == 4 and liq.price == 66
    # 10,000 − 30,000 + 300·66 = −200: closed at 66, the 200 written off.
    assert liq.shortfall == D(200) and "at or below zero" in liq.reason
    assert result.final_equity == 0 and result.final_cash == 0
    assert result.stats["account"] == "futures x3"
    for row in engine.ledger:
        assert row.equity == row.cash + row.qty * row.price


def test_maintenance_margin_liquidates_before_zero() -> None:
    margin = MarginModel(AccountType.MARGIN, leverage=D(3), maintenance=D("0.1"))
    strategy = Script({0: [("long", None)]})
    result, _ = run_backtest(
        strategy, bars_of([100, 100, 90, 74, 77, 120]), symbol="X", margin=margin
    )
    liq = result.liquidation
    # At 74: equity 10,000 − 30,000 + 300·74 = 2,200 < 10% of 22,200.
    assert liq is not None and liq.bar == 3 and liq.shortfall == 0
    assert "under the maintenance margin 2220.00" in liq.reason
    assert result.final_equity == D(2_200)
    assert strategy.seen == [0, 1, 2]  # the strategy acts no more after it
    assert result.stats["account"] == "margin x3 mm 10%"


def test_a_short_is_liquidated_when_the_price_rises() -> None:
    result, _ = run_backtest(
        Script({0: [("short", None)]}), bars_of([100, 100, 150, 199, 201, 100]), symbol="X"
    )
    liq = result.liquidation
    assert liq is not None and liq.bar == 4  # 20,000 − 100·201 < 0
    assert result.final_equity == 0


def _gap_over_a_short() -> pd.DataFrame:
    """Flat at 100, then a bar opening at 250: a short of all the equity closed there loses
    more than the account has."""
    prices = [100.0, 100.0, 100.0, 250.0, 260.0, 240.0]
    idx = pd.date_range(T0, periods=len(prices), freq="1D", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": prices, "high": prices, "low": prices, "close": prices, "volume": 1.0}, index=idx
    )


def test_a_close_that_leaves_the_account_owing_stops_it_like_backtesting_py() -> None:
    """Short 100 at 100 from $10,050, reversed at an open of 250: the close leaves the
    account flat and owing $4,950, the long cannot be paid. backtesting.py stops there at
    0 (out of money); so do the engine and the fast path, which had gone on at -4,950."""
    from backtesting import Backtest
    from backtesting import Strategy as BtStrategy

    class BtScript(BtStrategy):  # backtesting.py calls next() from bar 1
        def init(self) -> None:
            pass

        def next(self) -> None:
            if len(self.data) == 2:
                self.sell()
            elif len(self.data) == 3:
                self.position.close()
                self.buy()

    bars = _gap_over_a_short()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = bars.rename(columns=str.title)
        theirs = Backtest(frame, BtScript, cash=10_050, exclusive_orders=True).run()
    plan: dict[int, list[tuple[str, float | None]]] = {1: [("short", None)], 2: [("long", None)]}
    result, _ = run_backtest(Script(plan), bars, symbol="X", initial_cash=D(10_050))
    trades = theirs["_trades"]
    assert [(t.entry_bar, t.exit_bar, t.qty, t.pnl) for t in result.trades] == [
        (int(trades.EntryBar[0]), int(trades.ExitBar[0]), D(int(trades.Size[0])), D(-15_000))
    ]
    assert theirs["Equity Final [$]"] == 0.0 == result.final_equity
    np.testing.assert_array_equal(result.equity, theirs["_equity_curve"]["Equity"])
    liq = result.liquidation
    assert liq is not None and liq.bar == 3 and liq.shortfall == D(4_950)
    assert "at or below zero" in liq.reason
    targets = np.array([np.nan, -1.0, 1.0, np.nan, np.nan, np.nan])
    fast = simulate_targets(
        bars["open"], bars["close"], targets, initial_cash=10_050, commission_pct=0
    )
    assert fast.final_equity == 0.0 == fast.final_cash
    np.testing.assert_array_equal(fast.equity, result.equity)


def test_a_close_within_float_rounding_of_the_threshold_is_decided_exactly() -> None:
    # 20,000 − 100·199.9999999 = 0.00001 > 0: the float look says maybe, the exact one no.
    closes = [100, 100, 199.9999999, 100]
    result, _ = run_backtest(Script({0: [("short", None)]}), bars_of(closes), symbol="X")
    assert result.liquidation is None and result.final_position == -100


def test_a_long_held_short_is_watched_past_the_look_ahead_window() -> None:
    closes = [100.0] * 6000 + [250.0, 100.0]
    result, _ = run_backtest(Script({0: [("short", None)]}), bars_of(closes), symbol="X")
    assert result.liquidation is not None and result.liquidation.bar == 6000


# --- funding ----------------------------------------------------------------------------------
def test_funding_is_charged_on_open_positions() -> None:
    rates = [0.0, 0.0, 0.001, float("nan"), -0.002, 0.001]
    bars = bars_of([100, 100, 110, 120, 100, 100], funding_rate=rates)
    margin = MarginModel(AccountType.FUTURES, leverage=D(2))
    result, engine = run_backtest(
        Script({0: [("long", None)]}), bars, symbol="X", margin=margin, record_ledger=True
    )
    # 200 units from bar 1: pays 200·110·0.001 = 22, receives 200·100·0.002 = 40, pays 20.
    assert result.stats["funding_paid"] == D(2)
    assert result.final_cash == D(10_000) - D(20_000) - D(2)
    assert result.final_equity == result.final_cash + 200 * 100
    for row in engine.ledger:
        assert row.equity == row.cash + row.qty * row.price


def test_spot_accounts_pay_no_funding() -> None:
    bars = bars_of([100, 100, 110], funding_rate=[0.01, 0.01, 0.01])
    result, _ = run_backtest(Script({0: [("long", None)]}), bars, symbol="X", margin=SPOT)
    assert result.stats["funding_paid"] == 0


# --- the model --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"leverage": D("0.5")}, "leverage"),
        ({"leverage": D(126)}, "leverage"),
        ({"account": AccountType.SPOT, "leverage": D(2)}, "leverage"),
        ({"maintenance": D(-1)}, "maintenance"),
        ({"leverage": D(4), "maintenance": D("0.25")}, "maintenance"),
    ],
)
def test_margin_model_refuses_values_out_of_range(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(MarginModelError) as err:
        MarginModel(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_liquidation_price_and_breach() -> None:
    model = MarginModel(leverage=D(2), maintenance=D("0.1"))
    assert model.liquidation_price(-10_000.0, 200.0) == pytest.approx(10_000 / (200 * 0.9))
    assert model.liquidation_price(30_000.0, -200.0) == pytest.approx(30_000 / (200 * 1.1))
    assert model.liquidation_price(5_000.0, 10.0) is None  # a paid-for long
    assert model.liquidation_price(-1.0, -10.0) == 0.0  # no cash: any price breaches
    assert model.liquidation_price(0.0, 0.0) is None
    assert MarginGuard(model, "t").threshold(D(0), D(0)) is None
    assert model.breach(D(0), D(0)) is not None
    assert model.breach(D(100), D(900)) is None
    assert model.breach(D(100), D(1001)) is not None


def test_guard_looks_again_only_when_due() -> None:
    guard = MarginGuard(MarginModel(), "t")
    close = np.array([100.0] * 200 + [160.0] + [100.0] * 99)
    assert guard.next_due(0, D(0), None) == NEVER
    assert guard.next_due(0, D(1), None) == NEVER  # a paid-for long never breaches
    assert guard.next_due(5, D(-1), 150.0) == 6  # live: the data may end here
    guard.freeze(close)
    # Blocks of 64 bars clear of 150 are skipped, one block, then two, then four at a time.
    assert guard.next_due(5, D(-1), 150.0) == 64
    assert guard.next_due(63, D(-1), 150.0) == 192
    assert guard.next_due(191, D(-1), 150.0) == 200  # the close of 160
    assert guard.next_due(200, D(-1), 170.0) == 256
    assert guard.next_due(255, D(-1), 170.0) == 300  # the end of the data
    assert guard.next_due(5, D(1), 99.0) == 64  # a long looks at the lows
    guard.use_funding(np.array([0.0] * 3 + [0.01] + [0.0] * 296))
    assert guard.next_due(0, D(1), None) == 3
    assert guard.next_due(3, D(1), None) == NEVER
    assert guard.next_due(0, D(-1), 150.0) == 3  # funding comes first


def test_cap_keeps_what_reduces_a_position() -> None:
    guard = MarginGuard(SPOT, "t")
    account = Portfolio(cash=D(0))
    account.positions["X"] = Position("X", D(5), D(100))
    order = Order(symbol="X", side=Side.SELL, qty=D(8))
    assert guard.cap(order, D(8), D(100), account, {"X": D(100)}, FillModel()) == 5
    assert guard.refused == 1
    assert guard.cap(order, D(4), D(100), account, {"X": D(100)}, FillModel()) == 4
    assert guard.refused == 1


# --- paper and live ---------------------------------------------------------------------------
def test_live_engine_liquidates_by_the_same_rule(caplog: pytest.LogCaptureFixture) -> None:
    """A short that the price runs over: the live engine sends a closing order through the
    same path as every order and stops the strategy; the log line is an error."""
    sent: list[tuple[Order, Decimal]] = []
    strategy = Script({0: [("short", None)]})
    engine = DispatchEngine(
        strategy, "X", EngineConfig(), lambda order, ref: sent.append((order, ref))
    )
    closes = [100, 100, 150, 199, 201, 100, 90]
    with caplog.at_level("ERROR", logger="sigma.engine.margin"):
        for k, close in enumerate(closes):
            ts = (T0 + pd.Timedelta(minutes=k)).to_pydatetime()
            price = D(close)
            engine.on_live_bar(Bar("X", ts, price, price, price, price), ref_price=price)
            for order, ref in sent:
                assert order.qty is not None
                engine.on_fill(
                    Fill(order.client_order_id, "X", order.side, order.qty, ref, D(0), ts)
                )
                engine.on_order_final(order.client_order_id, "filled")
            sent.clear()
    liq = engine.margin.liquidation
    assert liq is not None and liq.bar == 4 and liq.price == 201
    assert engine.halted
    assert strategy.seen == [0, 1, 2, 3]
    closing = [o for o in engine.orders if o.tag == "liquidation"]
    assert len(closing) == 1 and closing[0].side is Side.BUY and closing[0].reduce_only
    assert engine.portfolio.qty("X") == 0
    assert any("LIQUIDATED" in r.message for r in caplog.records)


def test_live_engine_stops_an_account_a_close_left_owing() -> None:
    """The short's closing buy fills far above its reference (a gap): the account is flat
    and owes; at the next close it is out of money, the strategy stops, and nothing is sent
    (there is no position to close)."""
    sent: list[tuple[Order, Decimal]] = []
    strategy = Script({0: [("short", None)], 1: [("buy", 100)]})
    engine = DispatchEngine(
        strategy, "X", EngineConfig(), lambda order, ref: sent.append((order, ref))
    )
    fill_at = {1: D(250)}  # the buy of bar 1 fills at 250
    for k, close in enumerate([100, 100, 250, 260]):
        ts = (T0 + pd.Timedelta(minutes=k)).to_pydatetime()
        price = D(close)
        engine.on_live_bar(Bar("X", ts, price, price, price, price), ref_price=price)
        for order, ref in sent:
            assert order.qty is not None
            at = fill_at.get(k, ref)
            engine.on_fill(Fill(order.client_order_id, "X", order.side, order.qty, at, D(0), ts))
            engine.on_order_final(order.client_order_id, "filled")
        sent.clear()
    liq = engine.margin.liquidation
    assert liq is not None and liq.bar == 2 and "at or below zero" in liq.reason
    assert engine.halted and strategy.seen == [0, 1]
    assert engine.portfolio.qty("X") == 0 and engine.portfolio.cash == D(-5_000)
    assert not [o for o in engine.orders if o.tag == "liquidation"]
