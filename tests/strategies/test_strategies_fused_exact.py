"""The O(n) fused kernels decide exactly as their strategies' textbook targets: Bollinger's
running bands settle only what their bound allows, Donchian's doubled extremes are the
rolling ones, and decisions coded by the position held execute as the per-bar rows do."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from unittest import mock

import numba
import numpy as np
import pandas as pd
import pytest

from sigma.engine.fast import BarColumns, FastResult, fast_params, run_twin, simulate_targets
from sigma.strategies import bollinger_run, donchian_run, next_open
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import BollingerBreakout, DonchianTrend, RsiReversion
from sigma.strategies.kernels import rolling_extreme
from sigma.strategies.vectorised import FULL, FusedRun, Terms

N = 4_000


def _series(kind: str, rng: np.random.Generator) -> np.ndarray:
    """Prices of a kind that stresses a bound: cent walks, ticks that sit still (exact ties),
    constants, values crossing zero, tiny, small (squares underflow) and huge magnitudes,
    magnitudes mixed within a window, NaN and infinities."""
    n = N
    if kind == "cents":
        return np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.001, n))), 2)
    if kind == "ticks":
        return np.round(50 + np.cumsum(rng.choice([-0.01, 0, 0, 0, 0.01], n)), 2)
    if kind == "flat":
        x = np.full(n, 3.7)
        x[n // 2 :] = 1e6 + np.round(rng.normal(0, 1, n - n // 2))
        return x
    if kind == "negative":
        return np.cumsum(rng.normal(0, 1, n)) - 20
    if kind == "tiny":
        return np.cumsum(rng.normal(0, 1e-300, n))
    if kind == "small":  # squares and their roundings underflow: the bounds' absolute floor
        return 10.0 ** rng.choice([-160, -155, -150]) * np.round(np.cumsum(rng.normal(0, 1, n)), 1)
    if kind == "huge":
        return 1e150 * np.round(np.cumsum(rng.normal(0, 1, n)))
    if kind == "mixed":
        return np.round(rng.normal(0, 1, n), 1) * 10.0 ** rng.integers(-5, 8, n)
    if kind == "integers":
        return rng.integers(0, 4, n).astype(float)
    assert kind == "gaps"
    x = np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 2)
    x[rng.integers(0, n, 5)] = np.nan
    x[rng.integers(0, n, 2)] = np.inf
    x[rng.integers(0, n, 2)] = -np.inf
    return x


KINDS = ["cents", "ticks", "flat", "negative", "tiny", "small", "huge", "mixed", "integers", "gaps"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("period", [1, 2, 5, 20, 129, 300])
def test_running_bands_settle_only_what_the_textbook_bands_decide(kind: str, period: int) -> None:
    """Every bar the running bands settle has the textbook bands' decisions; the others are
    left to the textbook bands."""
    rng = np.random.default_rng(KINDS.index(kind) * 1000 + period)
    x = _series(kind, rng)
    size = next_open.BLOCK
    codes = np.empty(size, dtype=np.int64)
    sums = (np.empty(size + period), np.empty(size + period))
    work = np.empty(period)
    for k_std in (0.5, 2.0, 1.0, 0.0, 3.3, -1.5):
        for short in (True, False):
            for c0 in range(period - 1, N, size):
                m = min(size, N - c0)
                bollinger_run._approximate(x, c0, m, period, k_std, short, sums, codes)
                for j in np.flatnonzero(codes[:m] != bollinger_run._UNSETTLED):
                    textbook = bollinger_run._textbook_code(x, c0 + j, period, k_std, short, work)
                    assert codes[j] == textbook, (kind, period, k_std, c0 + j)


def test_running_bands_settle_nearly_every_bar_of_a_walk() -> None:
    """The textbook bands are a rare fallback: cent prices tie their average now and then."""
    x = _series("cents", np.random.default_rng(1))
    codes = np.empty(next_open.BLOCK, dtype=np.int64)
    sums = (np.empty(next_open.BLOCK + 20), np.empty(next_open.BLOCK + 20))
    unsettled = 0
    for c0 in range(19, N, next_open.BLOCK):
        m = min(next_open.BLOCK, N - c0)
        bollinger_run._approximate(x, c0, m, 20, 2.0, True, sums, codes)
        unsettled += int(np.count_nonzero(codes[:m] == bollinger_run._UNSETTLED))
    assert unsettled < N // 100


@pytest.mark.parametrize("periods", [(1, 1), (2, 3), (5, 20), (10, 20), (64, 64), (37, 300)])
def test_doubled_extremes_are_the_rolling_ones(periods: tuple[int, int]) -> None:
    """Channels from doubling widths are `kernels.rolling_extreme`'s, NaN included (a -0.0
    for a 0.0 is allowed: no comparison tells them apart)."""
    rng = np.random.default_rng(sum(periods))
    x = np.round(rng.normal(0, 3, N), 0)  # many exact ties and zeros of both signs
    x[rng.integers(0, N, 4)] = np.nan
    x[rng.integers(0, N, 50)] *= -0.0
    top = max(periods)
    size = next_open.BLOCK
    scratch = (np.empty(size + top), np.empty(size + top))
    for sign in (1.0, -1.0):
        want = [np.concatenate(([np.nan], rolling_extreme(x, p, sign)[:-1])) for p in periods]
        outs = (np.empty(size), np.empty(size))
        for c0 in range(top, N, size):
            m = min(size, N - c0)
            donchian_run._channels(x, c0, m, periods, sign, scratch, outs)
            for out, expected in zip(outs, want, strict=True):
                np.testing.assert_array_equal(out[:m], expected[c0 : c0 + m])


@numba.njit(cache=True)
def _run(  # pragma: no cover - numba-compiled
    open_: np.ndarray,
    close: np.ndarray,
    codes: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    coded: bool,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # The decisions executed a block at a time, from their codes or from per-bar rows.
    a, equity, lots, money = next_open.started(room, terms)
    end = next_open.GO_ON
    n = len(close)
    flat, long, short = rows
    for c0 in range(0, n, next_open.BLOCK):
        m = min(next_open.BLOCK, n - c0)
        if coded:
            a, end = next_open.execute_coded(
                a, codes[c0:], c0, m, open_, close, equity, terms, lots, money
            )
        else:
            block = (flat[c0:], long[c0:], short[c0:])
            a, end = next_open.execute(a, block, c0, m, open_, close, equity, terms, lots, money)
        if end != next_open.GO_ON:
            break
    return next_open.finished(end, equity, a, lots, money)


def _rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    target = np.array([np.nan, 1.0, -1.0, 0.0])
    return target[codes & 3], target[(codes >> 2) & 3], target[(codes >> 4) & 3]


@pytest.mark.parametrize("seed", range(6))
def test_coded_decisions_execute_as_the_rows_do(seed: int) -> None:
    """Random codes (each of the 64, sparse and dense) over prices that may go below zero
    (a close-out) and a book that may fill up: the same run either way."""
    rng = np.random.default_rng(seed)
    n = 3_000
    close = np.abs(20 + np.cumsum(rng.normal(0, 1, n))) * rng.choice([1, 1, 1, -1], n)
    open_ = np.concatenate(([20.0], close[:-1]))
    density = [0.02, 0.3, 1.0][seed % 3]
    codes = np.where(rng.random(n) < density, rng.integers(0, 64, n), 0).astype(np.int64)
    terms = Terms.of(1_000, 0.001, 0.5 * (seed % 2), 1)
    for cap in (3, n):
        coded = _run(open_, close, codes, _rows(codes), True, terms, next_open.new_room(n, cap))
        rowed = _run(open_, close, codes, _rows(codes), False, terms, next_open.new_room(n, cap))
        if coded[0] == FULL:  # made again with more room: its equity counts to its last exit
            marked = int(coded[6][-1]) + 1
            coded = (coded[0], coded[1][:marked], *coded[2:])
            rowed = (rowed[0], rowed[1][:marked], *rowed[2:])
        for got, want in zip(coded, rowed, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_flat_account_left_owing_is_written_off_by_every_executor() -> None:
    """Short 100 at 100 from 10,050, reversed at an open of 250: the close leaves the account
    flat and owing 4,950 and the long cannot be paid. Each executor (per-bar rows, coded
    decisions, a stretch between sparse decisions) writes it off at that bar's close, with
    no round trip beyond the short and no fee for the write-off."""
    prices = np.array([100.0, 100.0, 100.0, 250.0, 260.0, 240.0])
    codes = np.zeros(len(prices), dtype=np.int64)
    codes[1] = next_open.code(next_open.SHORT, next_open.NONE, next_open.NONE)
    codes[2] = next_open.code(next_open.NONE, next_open.NONE, next_open.LONG)
    terms = Terms.of(10_050, 0, 0, 1)
    room = next_open.new_room(len(prices), len(prices))
    for coded in (True, False):
        out = _run(prices, prices, codes, _rows(codes), coded, terms, room)
        status, equity, cash, qty, fees, e_bar, x_bar, units, _, _, pnl = out
        assert (status, cash, qty, fees) == (-1, 0.0, 0.0, 0.0)
        np.testing.assert_array_equal(equity, [10_050, 10_050, 10_050, 0, 0, 0])
        assert (list(e_bar), list(x_bar), list(units), list(pnl)) == ([2], [3], [-100], [-15_000])
    when = np.array([1, 2], dtype=np.int64)
    wants = np.array([-1, 1], dtype=np.int64)
    a, equity, lots, money = next_open.started(next_open.new_room(6, 6), terms)
    a, end = next_open.execute_at(
        a, when, wants, 2, 0, 6, prices, prices, equity, terms, lots, money
    )
    assert end == -1 and a.cash == 0.0 and a.direction == 0 and a.trades == 1
    np.testing.assert_array_equal(equity, [10_050, 10_050, 10_050, 0, 0, 0])


def _ticks(seed: int, n: int = 6_000) -> pd.DataFrame:
    """Tick-sized moves that often sit still: ties of closes, bands and channels."""
    rng = np.random.default_rng(seed)
    close = np.round(20 + np.cumsum(rng.choice([-0.01, 0, 0, 0, 0.01], n)), 2)
    bars = pd.DataFrame(
        {
            "open": np.concatenate(([close[0]], close[:-1])),
            "high": close + rng.choice([0, 0, 0.01], n),
            "low": close - rng.choice([0, 0, 0.01], n),
            "close": close,
            "volume": 1.0,
        }
    )
    bars.iloc[n // 2, :4] = np.nan
    return bars


CASES: list[tuple[type[Strategy], dict[str, Any]]] = [
    (RsiReversion, {"period": 2}),
    (RsiReversion, {"period": 7, "oversold": 45, "overbought": 55, "allow_short": False}),
    (BollingerBreakout, {"period": 5, "k": 0.5}),
    (BollingerBreakout, {"period": 150, "k": 1.0, "allow_short": False}),
    (DonchianTrend, {"entry": 2, "exit": 2}),
    (DonchianTrend, {"entry": 55, "exit": 20, "allow_short": False}),
]


def _fused_is_the_targets_executed(
    cls: type[Strategy], columns: BarColumns, params: dict[str, Any]
) -> FastResult:
    """The fused run of `cls` on `columns`, checked field by field against executing its
    targets on the same account."""
    terms = Terms.of(10_000, 0.0001, 0.1, 1)
    fused = run_twin(cls, columns, params, terms)
    want = simulate_targets(
        columns["open"],
        columns["close"],
        cls.targets(columns, params),
        initial_cash=terms.initial_cash,
        commission_pct=terms.commission_pct,
        commission_fixed=terms.commission_fixed,
    )
    for field in FastResult.__slots__:
        np.testing.assert_array_equal(getattr(fused, field), getattr(want, field), field)
    return fused


@pytest.mark.parametrize(("cls", "params"), CASES, ids=lambda v: getattr(v, "name", str(v)))
@pytest.mark.parametrize("seed", [1, 2])
def test_fused_runs_on_ticks_are_the_targets_executed(
    cls: type[Strategy], params: dict[str, Any], seed: int
) -> None:
    fused = _fused_is_the_targets_executed(
        cls, BarColumns(_ticks(seed), check=False), fast_params(cls, params)
    )
    assert fused.n_trades > 1


def _decimal_replay(args: tuple[Any, ...]) -> Decimal | None:
    """The replayed cash fill by fill in Decimal (the integer replay switched off)."""
    next_open._REPLAY.closed, next_open._REPLAY.cash = 0, None
    with mock.patch.object(next_open, "_exact_replay", return_value=None):
        next_open.exact_entry_units(*args, 100.0)
    return next_open._REPLAY.cash


@pytest.mark.parametrize("seed", range(4))
def test_the_integer_replay_is_the_decimal_one(seed: int) -> None:
    """Prices of 0 to 6 decimals (and full-precision ones), -0.0, lots up to 10^8, fees and
    lots of many digits: wherever the integer replay answers, it is the Decimal cash."""
    rng = np.random.default_rng(seed)
    answered = 0
    for trial in range(300):
        n = int(rng.integers(1, 200))
        prices = rng.normal(1, 0.3, n) * 10.0 ** rng.integers(-3, 9)
        if trial % 7:
            prices = np.round(prices, int(rng.integers(0, 7)))
        prices[rng.integers(0, n)] *= -0.0 if trial % 5 == 0 else 1.0
        k = int(rng.integers(0, n))
        top = 10 ** int(rng.integers(0, 9))
        entry, exit_ = rng.integers(0, n, k), rng.integers(0, n, k)
        units = rng.integers(-top, top + 1, k)
        cash = float(rng.choice([1e6, 10_000, 60, 1234.56, 1e15, 0.1]))
        pct = float(rng.choice([0, 1e-5, 0.001, 0.0015, 1.2345e-7, 0.1 + 0.2]))
        fixed = float(rng.choice([0, 0.5, 9, 0.01, 1e-9]))
        lot = float(rng.choice([1, 0.001, 0.1, 100, 0.3, 1e-8]))
        dec = [Decimal(repr(v)) for v in (cash, pct, fixed, lot)]
        fast = next_open._exact_replay(
            dec[0], (dec[1], dec[2], dec[3]), prices[entry], prices[exit_], units
        )
        if fast is not None:
            answered += 1
            args = (prices, cash, pct, fixed, lot, entry, exit_, units, k)
            assert fast == _decimal_replay(args), trial
    assert answered > 50


def test_the_integer_replay_sums_a_long_run_in_int64_pieces() -> None:
    """Fifty thousand round trips of ten thousand lots: their magnitudes sum past int64,
    so they are summed a run of fills at a time, the cash carried between runs."""
    rng = np.random.default_rng(7)
    n = 50_000
    prices = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.001, 2 * n))), 2)
    entry, exit_ = np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)
    units = rng.integers(5_000, 15_000, n) * rng.choice([-1, 1], n)
    cash, pct, fixed, lot = 1e6, 1e-5, 0.5, 1.0
    dec = [Decimal(repr(v)) for v in (cash, pct, fixed, lot)]
    size = np.abs(units) * 10.0 * 2e4 * (1e5 + 1.0)  # scaled: lot 1.0, cents, pct 1e-05
    assert size.sum() > 2.0**63
    fast = next_open._exact_replay(
        dec[0], (dec[1], dec[2], dec[3]), prices[entry], prices[exit_], units
    )
    assert fast is not None
    assert fast == _decimal_replay((prices, cash, pct, fixed, lot, entry, exit_, units, n))


PERIOD = {RsiReversion: "period", BollingerBreakout: "period", DonchianTrend: "entry"}


@pytest.mark.parametrize("cls", list(PERIOD), ids=lambda c: c.name)
def test_warm_ups_longer_than_a_block(cls: type[Strategy]) -> None:
    """A period past a block of bars (beyond the parameters' range, as a kernel may be
    called): the bars before the first decision are all executed as nothing."""
    bars = _ticks(3, 8_000)
    params = {**fast_params(cls, {}), PERIOD[cls]: next_open.BLOCK + 500}
    _fused_is_the_targets_executed(cls, BarColumns(bars, check=False), params)


@pytest.mark.parametrize("cls", list(PERIOD), ids=lambda c: c.name)
def test_histories_about_as_long_as_the_warm_up(cls: type[Strategy]) -> None:
    """Histories ending before, at and after the first decision, on closes that want to
    trade from the first indicator values on (RSI(6) falling to 0, a close far above the first
    bands, a breakout of the first channel, and again on the next bar): the fused run is its
    targets executed, and trades first on the bar after backtesting.py's start (the bar after
    the first RSI, the first bands, the first channel: `Strategy.decision_start`)."""
    period = 6
    params = {**fast_params(cls, {}), PERIOD[cls]: period}
    if cls is RsiReversion:
        close = 100.0 - 3.0 * np.arange(period + 6)
        first = period + 1
    else:
        first = period if cls is BollingerBreakout else period + 1
        params.update({"k": 1.0} if cls is BollingerBreakout else {"exit": 3})
        close = np.full(period + 6, 100.0)
        close[first - 1 :] = 150.0 + 50.0 * np.arange(period + 7 - first)
    bars = pd.DataFrame(
        {"open": np.concatenate(([close[0]], close[:-1])), "high": close + 0.5,
         "low": close - 0.5, "close": close, "volume": 1.0}
    )  # fmt: skip
    held = [
        _fused_is_the_targets_executed(
            cls, BarColumns(bars.iloc[:n], check=False), params
        ).final_qty
        for n in range(1, len(bars) + 1)
    ]
    # Decided at `first`, filled at the next open: held from a history of first + 2 bars.
    assert np.flatnonzero(held)[0] + 1 == first + 2
