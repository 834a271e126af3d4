"""The compiled fast path against the exact Decimal engine: same trades, same money, for
every built-in strategy's vectorised twin."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sigma.engine.fast import (
    BarColumns,
    BeyondFastPath,
    FastResult,
    fast_backtest,
    fast_params,
    fast_path_ok,
    run_twin,
    simulate_targets,
)
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.research.backtest import run_backtest
from sigma.strategies.base import Strategy, crossed_above
from sigma.strategies.builtin import (
    BUILTIN_STRATEGIES,
    BollingerBreakout,
    DonchianTrend,
    RsiReversion,
    SmaCross,
)
from sigma.strategies.indicators import sma
from sigma.strategies.running import sma_cross_targets
from sigma.strategies.vectorised import Targets, Terms
from tests.scripted import FromBarZero


def _goog() -> pd.DataFrame:
    from backtesting.test import GOOG

    df = GOOG.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]].astype(float)
    df.index = pd.DatetimeIndex(df.index, tz="UTC", name="ts")
    return df


def _walk(n: int, seed: int, sigma: float = 0.002) -> pd.DataFrame:
    """Minute bars of a seeded random walk, prices in cents."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, sigma, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, sigma / 4, n)), 2)
    high = np.maximum(open_, close) + 0.01
    low = np.minimum(open_, close) - 0.01
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx
    )


def _cents(value: Decimal | float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.01"))


def _assert_same(
    fast: FastResult, bars: pd.DataFrame, strategy: Strategy, fm: FillModel, cash: Decimal
) -> None:
    exact, _ = run_backtest(strategy, bars, symbol="X", initial_cash=cash, fill_model=fm)
    assert exact.trades, "the case should exercise at least one round trip"
    got = list(zip(fast.entry_bar.tolist(), fast.exit_bar.tolist(), fast.qty.tolist(), strict=True))
    want = [(t.entry_bar, t.exit_bar, float(t.qty)) for t in exact.trades]
    assert got == want
    assert fast.entry_price.tolist() == [float(t.entry_price) for t in exact.trades]
    assert fast.exit_price.tolist() == [float(t.exit_price) for t in exact.trades]
    np.testing.assert_allclose(fast.pnl, [float(t.pnl) for t in exact.trades], atol=1e-6)
    assert _cents(fast.final_equity) == exact.final_equity.quantize(Decimal("0.01"))
    assert fast.final_qty == float(exact.final_position)
    np.testing.assert_allclose(fast.equity, exact.equity.to_numpy(), rtol=1e-9, atol=1e-6)


def test_goog_sma_cross_matches_engine_and_backtesting_py() -> None:
    bars = _goog()
    fm = FillModel(commission_pct=Decimal("0.002"))
    fast = fast_backtest(SmaCross, {"fast": 10, "slow": 20}, bars, Decimal(10_000), fm)
    assert fast.n_trades == 93
    assert _cents(fast.final_equity) == Decimal("56263.52")
    _assert_same(fast, bars, SmaCross(fast=10, slow=20), fm, Decimal(10_000))


@pytest.mark.parametrize(
    ("n", "seed", "fast_n", "slow_n", "pct"),
    [(10_000, 1, 10, 20, "0.001"), (30_000, 2, 5, 40, "0.0005"), (50_000, 3, 20, 60, "0.002")],
)
def test_random_walks_match_engine(n: int, seed: int, fast_n: int, slow_n: int, pct: str) -> None:
    bars = _walk(n, seed)
    fm = FillModel(commission_pct=Decimal(pct))
    params = {"fast": fast_n, "slow": slow_n}
    fast = fast_backtest(SmaCross, params, bars, Decimal(100_000), fm)
    assert fast.n_trades > 50
    _assert_same(fast, bars, SmaCross(**params), fm, Decimal(100_000))


def test_sma_cross_targets_are_the_strategy_decisions() -> None:
    close = _walk(3_000, 5)["close"].to_numpy()
    targets = sma_cross_targets(close, 5, 15)
    f, s = sma(close, 5), sma(close, 15)
    assert np.isnan(targets[:15]).all()  # the slow warm-up (NaN) never crosses
    for i in range(1, len(close)):
        up = f[i - 1] < s[i - 1] and f[i] > s[i]
        down = s[i - 1] < f[i - 1] and s[i] > f[i]
        expected = 1.0 if up else (-1.0 if down else np.nan)
        assert targets[i] == expected or (np.isnan(targets[i]) and np.isnan(expected))
    flat = sma_cross_targets(close, 5, 15, allow_short=False)
    assert set(np.unique(flat[~np.isnan(flat)])) == {0.0, 1.0}
    assert len(sma_cross_targets(close[:1], 5, 15)) == 1
    # Touching without crossing is no crossover.
    assert np.isnan(sma_cross_targets([1.0, 1.0, 1.0, 1.0], 1, 2)).all()


def test_long_only_variant_matches_engine() -> None:
    bars = _walk(5_000, 11)
    fm = FillModel(commission_pct=Decimal("0.001"))
    params = {"fast": 10, "slow": 30, "allow_short": False}
    fast = fast_backtest(SmaCross, params, bars, Decimal(10_000), fm)
    assert (fast.qty > 0).all()
    _assert_same(fast, bars, SmaCross(**params), fm, Decimal(10_000))


def _follower(targets: np.ndarray) -> Strategy:
    """A strategy that follows a precomputed target array with go_long/go_short/go_flat."""

    class Follower(FromBarZero):
        name = "follower"

        def on_bar(self) -> None:
            t = targets[self.bar_index]
            if np.isnan(t):
                return
            if t > 0:
                self.go_long()
            elif t < 0:
                self.go_short()
            else:
                self.go_flat()

    return Follower()


def _random_targets(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice([np.nan] * 6 + [1.0, 1.0, -1.0, -1.0, 0.0], size=n)


@pytest.mark.parametrize(
    ("pct", "fixed", "lot"),
    [("0.001", "0", "1"), ("0.002", "1.5", "1"), ("0.001", "2", "0.001"), ("0", "0", "0.001")],
)
def test_nan_targets_fixed_fee_and_lots_match_engine(pct: str, fixed: str, lot: str) -> None:
    bars = _walk(4_000, 21)
    targets = _random_targets(len(bars), 22)
    fm = FillModel(
        commission_pct=Decimal(pct), commission_fixed=Decimal(fixed), lot_size=Decimal(lot)
    )
    fast = simulate_targets(
        bars["open"],
        bars["close"],
        targets,
        initial_cash=Decimal(10_000),
        commission_pct=fm.commission_pct,
        commission_fixed=fm.commission_fixed,
        lot_size=fm.lot_size,
    )
    _assert_same(fast, bars, _follower(targets), fm, Decimal(10_000))
    if lot != "1":
        assert not np.allclose(fast.qty, np.round(fast.qty))  # fractional lots were used


def test_sizing_ties_are_resolved_exactly() -> None:
    """Round numbers where the float quotient lands on (or just beside) a whole lot."""
    n = 8
    idx = pd.date_range("2024-01-01", periods=n, freq="1D", tz="UTC", name="ts")
    opens = np.array([100.0, 100.0, 0.7, 0.7, 99.8, 99.8, 3.3, 3.3])
    bars = pd.DataFrame(
        {"open": opens, "high": opens, "low": opens, "close": opens, "volume": 1.0}, index=idx
    )
    targets = np.array([1.0, -1.0, 1.0, 0.0, 1.0, -1.0, 1.0, np.nan])
    for pct, fixed, cash in [("0", "0", 10_000), ("0.002", "0", 10_020), ("0.001", "5", 7_012)]:
        fm = FillModel(commission_pct=Decimal(pct), commission_fixed=Decimal(fixed))
        fast = simulate_targets(
            opens,
            opens,
            targets,
            initial_cash=cash,
            commission_pct=float(pct),
            commission_fixed=float(fixed),
        )
        _assert_same(fast, bars, _follower(targets), fm, Decimal(cash))
    fast = simulate_targets(opens, opens, targets, initial_cash=10_000, commission_pct=0.0)
    assert fast.qty[0] == 100.0  # 10,000 / 100 is exactly 100 units, not 99
    # In floats 12.525 / (0.05 · 1.002) is 249.99999999999997: the exact rule buys 250.
    cheap = np.array([0.05, 0.05, 0.06, 0.06])
    frame = bars.iloc[:4].assign(open=cheap, high=cheap, low=cheap, close=cheap)
    targets = np.array([1.0, -1.0, np.nan, np.nan])
    fm = FillModel(commission_pct=Decimal("0.002"))
    fast = simulate_targets(cheap, cheap, targets, initial_cash=12.525, commission_pct=0.002)
    assert fast.qty[0] == 250.0
    _assert_same(fast, frame, _follower(targets), fm, Decimal("12.525"))


def test_entry_too_small_stays_flat() -> None:
    prices = np.array([10.0, 10.0, 50.0, 50.0, 5.0, 5.0])
    targets = np.array([1.0, np.nan, -1.0, np.nan, 1.0, np.nan])
    res = simulate_targets(
        prices, prices, targets, initial_cash=20.0, commission_pct=0.0, commission_fixed=1.0
    )
    # Buys 1 at 10 (cash 9), closes at 50 (cash 58) and shorts 1; covers at 5 ...
    assert res.entry_bar.tolist() == [1, 3]
    assert res.qty.tolist() == [1.0, -1.0]
    res = simulate_targets(prices, prices, targets, initial_cash=5.0, commission_pct=0.0)
    assert res.n_trades == 0
    assert res.final_equity == 5.0
    assert (res.equity == 5.0).all()
    assert res.trades_frame().empty


def test_input_errors() -> None:
    bars = _walk(100, 1)
    with pytest.raises(ValueError, match="no fast path"):
        fast_backtest(Strategy, {}, bars)
    with pytest.raises(ValueError, match="must be below"):
        fast_backtest(SmaCross, {"fast": 20, "slow": 10}, bars)
    with pytest.raises(ValueError, match="slippage"):
        fast_backtest(SmaCross, {}, bars, fill_model=FillModel(slippage_bps=Decimal(1)))
    with pytest.raises(ValueError, match="next open"):
        fast_backtest(SmaCross, {}, bars, fill_model=FillModel(timing=FillTiming.CLOSE))
    with pytest.raises(ValueError, match="no bars"):
        fast_backtest(SmaCross, {}, bars.iloc[:0])
    one = np.ones(3)
    with pytest.raises(ValueError, match="targets must be .* bar 0"):
        simulate_targets(one, one, [0.5, 1, 1], initial_cash=1, commission_pct=0)
    with pytest.raises(ValueError, match="differ in length"):
        simulate_targets(one, one, [1, 1], initial_cash=1, commission_pct=0)
    with pytest.raises(ValueError, match="one-dimensional"):
        simulate_targets(np.ones((3, 1)), one, one, initial_cash=1, commission_pct=0)
    with pytest.raises(ValueError, match="lot_size"):
        simulate_targets(one, one, one, initial_cash=1, commission_pct=0, lot_size=0)
    with pytest.raises(ValueError, match="commissions"):
        simulate_targets(one, one, one, initial_cash=1, commission_pct=-0.1)
    assert all(cls.vectorised() for cls in BUILTIN_STRATEGIES)
    assert not Strategy.vectorised()
    assert fast_path_ok(SmaCross, FillModel())
    assert not fast_path_ok(SmaCross, FillModel(slippage_bps=Decimal(1)))
    assert not fast_path_ok(Strategy, FillModel())


def test_defaults_and_empty_input() -> None:
    bars = _walk(2_000, 4)
    res = fast_backtest(SmaCross, {}, bars)  # SmaCross defaults, $10,000, no fees
    exact, _ = run_backtest(SmaCross(), bars, symbol="X")
    assert res.n_trades == len(exact.trades)
    assert _cents(res.final_equity) == exact.final_equity.quantize(Decimal("0.01"))
    empty: Any = np.zeros(0)
    res = simulate_targets(empty, empty, empty, initial_cash=100, commission_pct=0)
    assert res.final_equity == 100.0
    assert res.n_trades == 0


def test_every_entry_a_tie() -> None:
    """A flat price and no fees: every entry quotient is a whole number of units (each one
    goes through the exact Decimal check, replayed incrementally)."""
    n = 2_000
    prices = np.full(n, 100.0)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    bars = pd.DataFrame(
        {"open": prices, "high": prices, "low": prices, "close": prices, "volume": 1.0},
        index=idx,
    )
    targets = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    fast = simulate_targets(prices, prices, targets, initial_cash=10_000, commission_pct=0.0)
    assert fast.n_trades == n - 2
    _assert_same(fast, bars, _follower(targets), FillModel(), Decimal(10_000))


CASES: list[tuple[type[Strategy], dict[str, Any]]] = [
    (SmaCross, {"fast": 10, "slow": 20}),
    (SmaCross, {"fast": 3, "slow": 150, "allow_short": False}),
    (RsiReversion, {}),
    (RsiReversion, {"period": 5, "oversold": 25, "overbought": 60, "exit_level": 40}),
    (RsiReversion, {"period": 21, "allow_short": False}),
    (BollingerBreakout, {}),
    (BollingerBreakout, {"period": 10, "k": 1.0}),
    (BollingerBreakout, {"period": 40, "k": 2.5, "allow_short": False}),
    (DonchianTrend, {}),
    (DonchianTrend, {"entry": 5, "exit": 5}),
    (DonchianTrend, {"entry": 50, "exit": 7, "allow_short": False}),
]


@pytest.mark.parametrize(("cls", "params"), CASES, ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("data", ["walk", "goog"])
def test_every_builtin_twin_makes_the_engine_trades(
    cls: type[Strategy], params: dict[str, Any], data: str
) -> None:
    bars = _walk(6_000, 31, sigma=0.004) if data == "walk" else _goog()
    fm = FillModel(commission_pct=Decimal("0.001"), commission_fixed=Decimal("0.5"))
    fast = fast_backtest(cls, params, bars, Decimal(10_000), fm)
    _assert_same(fast, bars, cls(**params), fm, Decimal(10_000))


def test_twin_follows_a_skipped_entry_as_the_engine_does() -> None:
    """Once the account cannot pay the fixed fee, entries are skipped: a twin whose exits
    depend on the position held must read the flat row, as `on_bar` sees no position."""
    bars = _walk(3_000, 8, sigma=0.01)
    fm = FillModel(commission_pct=Decimal("0.01"), commission_fixed=Decimal("9"))
    for cls in (RsiReversion, BollingerBreakout, DonchianTrend):
        fast = fast_backtest(cls, {"allow_short": False}, bars, Decimal(60), fm)
        _assert_same(fast, bars, cls(allow_short=False), fm, Decimal(60))


def test_position_rows_are_read_by_the_position_held() -> None:
    prices = np.array([10.0, 10.0, 10.0, 10.0, 10.0])
    nothing = np.full(5, np.nan)
    # Flat: enter long at bar 1; long: exit at bar 2 (read only once long).
    rows = Targets(
        flat=np.array([1.0, np.nan, np.nan, np.nan, np.nan]),
        long=np.array([np.nan, np.nan, 0.0, np.nan, np.nan]),
        short=nothing,
    )
    res = simulate_targets(prices, prices, rows, initial_cash=100, commission_pct=0)
    assert (res.entry_bar.tolist(), res.exit_bar.tolist()) == ([1], [3])
    with pytest.raises(ValueError, match="differ in length"):
        simulate_targets(
            prices, prices, rows._replace(short=nothing[:2]), initial_cash=1, commission_pct=0
        )


def test_bar_columns_convert_once_and_on_demand() -> None:
    bars = _walk(10, 1).assign(volume=np.arange(10))
    columns = BarColumns(bars)
    assert list(columns) == ["open", "high", "low", "close", "volume"]
    assert len(columns) == 5
    volume = columns["volume"]
    assert volume.dtype == np.float64
    assert columns["volume"] is volume


def test_a_subclass_with_its_own_targets_does_not_run_the_fused_parent() -> None:
    """SmaCross runs fused; a subclass deciding otherwise runs its own targets."""

    class Contrary(SmaCross):
        name = "contrary"

        def on_bar(self) -> None:
            if crossed_above(self.fast_ma, self.slow_ma):
                self.go_short()
            elif crossed_above(self.slow_ma, self.fast_ma):
                self.go_long()

        @classmethod
        def targets(cls, bars: Any, params: Any, cache: dict[Any, Any] | None = None) -> Targets:
            return Targets.always(-SmaCross.targets(bars, params).flat)

    bars = _walk(3_000, 6)
    fm = FillModel(commission_pct=Decimal("0.001"))
    fast = fast_backtest(Contrary, {"fast": 5, "slow": 20}, bars, Decimal(10_000), fm)
    _assert_same(fast, bars, Contrary(fast=5, slow=20), fm, Decimal(10_000))


FUSED = [(cls, params) for cls, params in CASES if "fused" in vars(cls)]


@pytest.mark.parametrize(("cls", "params"), FUSED, ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize(("cash", "gaps"), [(10_000, False), (60, False), (10_000, True)])
def test_fused_runs_are_the_targets_executed(
    cls: type[Strategy], params: dict[str, Any], cash: int, gaps: bool
) -> None:
    """A fused kernel gives the very floats of executing the strategy's targets, skipped
    entries (too little cash for the fixed fee) and missing prices (NaN) included."""
    poor = cash < 100  # the walk and fees of the skipped-entry test above
    bars = _walk(3_000, 8, sigma=0.01) if poor else _walk(6_000, 31, sigma=0.004)
    if gaps:  # after the trades of the first 4,000 bars
        bars.iloc[4_000, :4] = np.nan
        bars.iloc[5_000, 1] = np.nan
    columns = BarColumns(bars, check=False)  # the kernels' own handling of NaN prices
    full = fast_params(cls, params)
    terms = Terms.of(cash, 0.01, 9, 1) if poor else Terms.of(cash, 0.001, 0.5, 1)
    fused = run_twin(cls, columns, full, terms)
    executed = simulate_targets(
        columns["open"],
        columns["close"],
        cls.targets(columns, full),
        initial_cash=terms.initial_cash,
        commission_pct=terms.commission_pct,
        commission_fixed=terms.commission_fixed,
    )
    for field in FastResult.__slots__:
        np.testing.assert_array_equal(getattr(fused, field), getattr(executed, field), field)
    assert poor or fused.n_trades > 5


def _cheap_token(n: int = 300) -> pd.DataFrame:
    """Hourly bars of a token near $0.00001 (9 decimals)."""
    rng = np.random.default_rng(3)
    close = np.round(1e-5 * np.exp(np.cumsum(rng.normal(0, 0.02, n))), 9)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx
    )


def test_positions_beyond_int64_lots_are_refused_clearly_and_evaluated_exactly() -> None:
    """$1M in a $0.00001 token with a lot of 1e-8 is ~10^19 lots a position: more than the
    fast path's int64 counts. It used to fail with numba's OverflowError; it says what and
    where to go, and the optimiser's evaluation runs such a trial on the exact engine."""
    from sigma.research.evaluation import evaluate

    bars = _cheap_token()
    fm = FillModel(commission_pct=Decimal("0.001"), lot_size=Decimal("1e-8"))
    params = {"fast": 5, "slow": 20}
    small = fast_backtest(SmaCross, params, bars, Decimal(1_000), fm)  # 10^11 lots: fine
    alike, _ = run_backtest(
        SmaCross(**params), bars, symbol="X", initial_cash=Decimal(1_000), fill_model=fm
    )
    assert small.exit_bar.tolist() == [t.exit_bar for t in alike.trades]
    assert _cents(small.final_equity) == alike.final_equity.quantize(Decimal("0.01"))
    with pytest.raises(BeyondFastPath, match="fast path counts exactly: use the exact engine"):
        fast_backtest(SmaCross, params, bars, Decimal(1_000_000), fm)
    targets = np.where(np.arange(len(bars)) % 10 == 0, 1.0, np.nan)
    with pytest.raises(BeyondFastPath):
        simulate_targets(
            bars["open"], bars["close"], targets, initial_cash=1e6, commission_pct=0.0,
            lot_size=1e-8,
        )  # fmt: skip
    exact, _ = run_backtest(
        SmaCross(**params), bars, symbol="X", initial_cash=Decimal(1_000_000), fill_model=fm
    )
    scored = evaluate(
        SmaCross, params, bars, initial_cash=Decimal(1_000_000), fill_model=fm, min_trades=1
    )
    assert scored.n_trades == len(exact.trades) > 5
    assert scored.return_pct == pytest.approx(float(exact.stats["total_return_pct"]))
