"""A compiled fast path for target-exposure strategies, for sweeps and large histories.

A target strategy states, at each bar's close, which exposure it wants: +1 long, -1 short,
0 flat, NaN to keep what it holds, possibly depending on the position it holds then (its
vectorised twin, `Strategy.targets`, gives one array per position: `Targets`).
`simulate_targets` executes those targets exactly as the engine executes `go_long` /
`go_short` / `go_flat` with a next-open fill model:

* the target decided on bar i's close is executed at bar i+1's open; a target equal to the
  current direction does nothing; the target of the last bar is never executed;
* the open position is closed first (fee = qty·price·commission_pct + commission_fixed), then
  the new direction is entered with floor((cash − commission_fixed) / (open·(1 + pct)))
  rounded down to `lot_size`; an entry of zero quantity is skipped (the account stays flat);
* cash moves by the full notional, equity = cash + qty·close at each bar, and the last
  position stays open (marked to market);
* an account whose equity at a close is at or below zero is closed out at that close and
  stops there (the engine's default margin account, as backtesting.py).

Accounting is float64 (with a compensated cash sum) instead of Decimal. The only place where a
float could change a decision is the floor of the entry quantity: when the quotient lies within
1e-9 of a lot boundary the quantity is recomputed exactly with the engine's Decimal rules, so
trades are the engine's trades and final equity agrees to the cent (see
tests/engine/test_engine_fast.py). The engine knows no concrete strategy: any strategy class
that defines the twin runs here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.margin import FUNDING_COLUMN, MarginModel
from sigma.strategies.base import Strategy
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import Targets

IntArray = npt.NDArray[np.int64]

# A sizing quotient this close (relative) to a lot boundary is re-derived in Decimal.
_TIE_TOLERANCE = 1e-9
_FULL = -2  # what `_simulate` reports when its trade slots ran out


@dataclass(frozen=True, slots=True)
class FastResult:
    """Outcome of `simulate_targets`: the equity curve at each close and the closed trades
    as parallel arrays (`qty` is signed: > 0 long, < 0 short; `pnl` is net of both fees)."""

    equity: FloatArray
    final_equity: float
    final_cash: float
    final_qty: float
    fees: float
    entry_bar: IntArray
    exit_bar: IntArray
    qty: FloatArray
    entry_price: FloatArray
    exit_price: FloatArray
    pnl: FloatArray

    @property
    def n_trades(self) -> int:
        """Number of closed round trips."""
        return len(self.entry_bar)

    def trades_frame(self) -> pd.DataFrame:
        """The closed trades as a DataFrame (one row per round trip)."""
        return pd.DataFrame(
            {
                "entry_bar": self.entry_bar,
                "exit_bar": self.exit_bar,
                "qty": self.qty,
                "entry_price": self.entry_price,
                "exit_price": self.exit_price,
                "pnl": self.pnl,
            }
        )


# --- exact sizing for near-ties ---------------------------------------------------------------
class _Replay(threading.local):
    """Exact Decimal cash after the first `closed` round trips of the current run."""

    closed: int = 0
    cash: Decimal | None = None


_REPLAY = _Replay()


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _exact_entry_units(
    open_: FloatArray,
    initial_cash: float,
    pct: float,
    fixed: float,
    lot: float,
    entry_bar: IntArray,
    exit_bar: IntArray,
    units: IntArray,
    n_closed: int,
    price: float,
) -> int:
    """Entry size in lots computed as the engine does (Decimal, 28 digits), replaying the
    fills so far: the closed round trips (entry and exit fills) leave the account flat. The
    replayed cash is kept per run (and thread), so each fill is replayed once."""
    pct_d, fixed_d, lot_d = _dec(pct), _dec(fixed), _dec(lot)
    cash = _REPLAY.cash if _REPLAY.cash is not None else _dec(initial_cash)
    for k in range(_REPLAY.closed, n_closed):
        signed = int(units[k]) * lot_d
        qty = abs(signed)
        p_in, p_out = _dec(open_[entry_bar[k]]), _dec(open_[exit_bar[k]])
        cash -= signed * p_in + (fixed_d + qty * p_in * pct_d)
        cash -= -signed * p_out + (fixed_d + qty * p_out * pct_d)
    _REPLAY.cash, _REPLAY.closed = cash, n_closed
    price_d = _dec(price)
    spendable = cash * Decimal("1.0") - fixed_d
    if spendable <= 0:
        return 0
    quotient = spendable / (price_d * (1 + pct_d))
    return int((quotient / lot_d).to_integral_value(ROUND_FLOOR))


# --- the compiled loop ------------------------------------------------------------------------
@numba.njit(cache=True)
def _simulate(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    close: FloatArray,
    when_flat: FloatArray,
    when_long: FloatArray,
    when_short: FloatArray,
    initial_cash: float,
    pct: float,
    fixed: float,
    lot: float,
    lots_per_unit: float,
    cap: int,
) -> tuple[
    int,
    FloatArray,
    float,
    float,
    float,
    IntArray,
    IntArray,
    IntArray,
    FloatArray,
    FloatArray,
    FloatArray,
]:
    n = len(close)
    equity = np.empty(n, dtype=np.float64)
    # Sized up front for `cap` round trips (the caller runs again with more when they do not
    # suffice): growing arrays inside the loop costs ~25 ns a bar in reference counting, even
    # on bars that never trade; slots for every bar would cost page faults on every call.
    t_entry = np.empty(cap, dtype=np.int64)
    t_exit = np.empty(cap, dtype=np.int64)
    t_units = np.empty(cap, dtype=np.int64)
    t_pin = np.empty(cap, dtype=np.float64)
    t_pout = np.empty(cap, dtype=np.float64)
    t_pnl = np.empty(cap, dtype=np.float64)
    n_tr = 0
    cash = initial_cash
    comp = 0.0  # Neumaier compensation of the cash sum
    fees = 0.0
    direction = 0
    units = 0
    qty = 0.0
    entry_bar = 0
    entry_price = 0.0
    entry_fee = 0.0
    bad = -1  # index of a target that is not +1, -1, 0 or NaN; _FULL: cap trades reached
    for i in range(n):
        if i > 0:
            if direction == 0:
                t = when_flat[i - 1]
            elif direction > 0:
                t = when_long[i - 1]
            else:
                t = when_short[i - 1]
            if t == t:  # not NaN
                if t != 1.0 and t != -1.0 and t != 0.0:
                    bad = i - 1
                    break
                want = 1 if t > 0 else (-1 if t < 0 else 0)
                if want != direction:
                    price = open_[i]
                    if direction != 0:
                        if n_tr == cap:
                            bad = _FULL
                            break
                        fee = fixed + qty * price * pct
                        delta = direction * qty * price - fee
                        s = cash + delta
                        if abs(cash) >= abs(delta):
                            comp += (cash - s) + delta
                        else:
                            comp += (delta - s) + cash
                        cash = s
                        fees += fee
                        t_entry[n_tr] = entry_bar
                        t_exit[n_tr] = i
                        t_units[n_tr] = direction * units
                        t_pin[n_tr] = entry_price
                        t_pout[n_tr] = price
                        t_pnl[n_tr] = direction * qty * (price - entry_price) - entry_fee - fee
                        n_tr += 1
                        direction = 0
                        units = 0
                        qty = 0.0
                    if want != 0:
                        spendable = (cash + comp) - fixed
                        new_units = 0
                        if spendable > 0:
                            r = spendable / (price * (1.0 + pct)) / lot
                            new_units = int(np.floor(r))
                            nearest = np.floor(r + 0.5)
                            if abs(r - nearest) <= _TIE_TOLERANCE * max(r, 1.0):
                                with numba.objmode(exact="int64"):
                                    exact = _exact_entry_units(
                                        open_,
                                        initial_cash,
                                        pct,
                                        fixed,
                                        lot,
                                        t_entry,
                                        t_exit,
                                        t_units,
                                        n_tr,
                                        price,
                                    )
                                new_units = exact
                        if new_units > 0:
                            units = new_units
                            qty = units / lots_per_unit if lots_per_unit > 0 else units * lot
                            fee = fixed + qty * price * pct
                            delta = -(want * qty * price + fee)
                            s = cash + delta
                            if abs(cash) >= abs(delta):
                                comp += (cash - s) + delta
                            else:
                                comp += (delta - s) + cash
                            cash = s
                            fees += fee
                            direction = want
                            entry_bar = i
                            entry_price = price
                            entry_fee = fee
        equity[i] = (cash + comp) + direction * qty * close[i]
        if direction != 0 and equity[i] <= 0.0:
            # Out of money: closed out at this close and stopped, as the engine's default
            # margin account is (a deficit left is written off).
            price = close[i]
            fee = fixed + qty * price * pct
            fees += fee
            t_entry[n_tr] = entry_bar
            t_exit[n_tr] = i
            t_units[n_tr] = direction * units
            t_pin[n_tr] = entry_price
            t_pout[n_tr] = price
            t_pnl[n_tr] = direction * qty * (price - entry_price) - entry_fee - fee
            n_tr += 1
            cash = max((cash + comp) + direction * qty * price - fee, 0.0)
            comp = 0.0
            direction = 0
            qty = 0.0
            equity[i:] = cash
            break
    return (
        bad,
        equity,
        cash + comp,
        direction * qty,
        fees,
        t_entry[:n_tr].copy(),
        t_exit[:n_tr].copy(),
        t_units[:n_tr].copy(),
        t_pin[:n_tr].copy(),
        t_pout[:n_tr].copy(),
        t_pnl[:n_tr].copy(),
    )


def _as_float_array(name: str, values: Any) -> FloatArray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def simulate_targets(
    open: Any,  # the bar column's name
    close: Any,
    targets: Targets | Any,
    *,
    initial_cash: float | Decimal,
    commission_pct: float | Decimal,
    commission_fixed: float | Decimal = 0.0,
    lot_size: float | Decimal = 1.0,
) -> FastResult:
    """Execute per-bar exposure targets (+1, -1, 0, NaN = keep) decided at each close at the
    next bar's open, all-in sizing, with the engine's fee and lot rules. `targets` is one
    array, or `Targets` (one array per position held); ValueError for a target read that is
    not +1, -1, 0 or NaN."""
    open_ = _as_float_array("open", open)
    close_ = _as_float_array("close", close)
    rows = targets if isinstance(targets, Targets) else Targets.always(targets)
    # A row shared by several positions is converted once.
    converted: dict[int, FloatArray] = {}
    tgt = Targets(*(converted.setdefault(id(row), _as_float_array("targets", row)) for row in rows))
    for row in tgt:
        if not len(open_) == len(close_) == len(row):
            raise ValueError(
                f"open, close and targets differ in length: {len(open_)}, {len(close_)}, {len(row)}"
            )
    cash, pct, fixed, lot = (
        float(initial_cash),
        float(commission_pct),
        float(commission_fixed),
        float(lot_size),
    )
    if lot <= 0:
        raise ValueError(f"lot_size must be > 0, got {lot_size}")
    if pct < 0 or fixed < 0:
        raise ValueError("commissions must be >= 0")
    # With a lot of 10^-k, units / 10^k is the float nearest the exact decimal quantity.
    per_unit = round(1.0 / lot)
    lots_per_unit = float(per_unit) if per_unit >= 1 and per_unit * lot == 1.0 else 0.0
    # A round trip spans at least one bar: n slots always suffice. Most strategies trade far
    # less often than every 8 bars, so they get that many and the rare others a second run.
    n = len(close_)
    for cap in (min(n, n // 8 + 1024), n):
        _REPLAY.closed, _REPLAY.cash = 0, None
        out = _simulate(open_, close_, *tgt, cash, pct, fixed, lot, lots_per_unit, cap)
        if out[0] != _FULL:
            break
    bad, equity, final_cash, final_qty, fees, e_bar, x_bar, units, p_in, p_out, pnl = out
    if bad >= 0:
        raise ValueError(f"targets must be +1, -1, 0 or NaN; bar {bad} has another value")
    final_equity = float(equity[-1]) if len(equity) else cash
    return FastResult(
        equity=equity,
        final_equity=final_equity,
        final_cash=float(final_cash),
        final_qty=float(final_qty),
        fees=float(fees),
        entry_bar=e_bar,
        exit_bar=x_bar,
        qty=np.asarray(units / lots_per_unit if lots_per_unit else units * lot, dtype=np.float64),
        entry_price=p_in,
        exit_price=p_out,
        pnl=pnl,
    )


# --- strategies ------------------------------------------------------------------------------
class BarColumns(Mapping[str, FloatArray]):
    """A bar frame's columns as float64 arrays, each converted when first read (a twin reads
    only the columns it trades on)."""

    def __init__(self, bars: pd.DataFrame) -> None:
        self._bars = bars
        self._arrays: dict[str, FloatArray] = {}

    def __getitem__(self, name: str) -> FloatArray:
        values = self._arrays.get(name)
        if values is None:
            values = self._arrays[name] = _as_float_array(name, self._bars[name])
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self._bars.columns)

    def __len__(self) -> int:
        return len(self._bars.columns)


def fast_params(strategy: type[Strategy], params: Mapping[str, Any]) -> dict[str, Any]:
    """Full, validated parameters of `strategy` (defaults filled in); ValueError when the
    strategy has no vectorised twin or the parameters are invalid."""
    if not strategy.vectorised():
        raise ValueError(f"strategy {strategy.name!r} has no fast path (no vectorised twin)")
    return dict(strategy(**params).params)


def check_fill_model(fill_model: FillModel) -> None:
    """ValueError when the fill model has features the fast path does not simulate."""
    if fill_model.slippage_bps:
        raise ValueError("the fast path does not model slippage; use the exact engine")
    if fill_model.timing is not FillTiming.NEXT_OPEN:
        raise ValueError("the fast path fills at the next open only; use the exact engine")


def fast_path_ok(
    strategy: type[Strategy],
    fill_model: FillModel,
    margin: MarginModel | None = None,
    bars: pd.DataFrame | None = None,
) -> bool:
    """Whether `strategy` under `fill_model` on a `margin` account (default: margin at
    leverage 1) can run on the fast path over `bars`. The fast path models only that default
    account (closed out at equity <= 0) and charges no funding: any other account, or bars
    with a funding rate, take the exact engine."""
    if not strategy.vectorised():
        return False
    if margin is not None and margin != MarginModel():
        return False
    rates = bars.get(FUNDING_COLUMN) if bars is not None else None
    if rates is not None and np.nan_to_num(rates.to_numpy(dtype=np.float64)).any():
        return False
    try:
        check_fill_model(fill_model)
    except ValueError:
        return False
    return True


def fast_backtest(
    strategy: type[Strategy],
    params: Mapping[str, Any],
    bars: pd.DataFrame,
    initial_cash: float | Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
) -> FastResult:
    """`run_backtest` of a strategy with a vectorised twin, through the compiled path."""
    full = fast_params(strategy, params)
    fm = fill_model or FillModel()
    check_fill_model(fm)
    if bars.empty:
        raise ValueError(f"no bars to backtest {strategy.name} on")
    columns = BarColumns(bars)
    return simulate_targets(
        columns["open"],
        columns["close"],
        strategy.targets(columns, full),
        initial_cash=initial_cash,
        commission_pct=fm.commission_pct,
        commission_fixed=fm.commission_fixed,
        lot_size=fm.lot_size,
    )


__all__ = [
    "BarColumns",
    "FastResult",
    "check_fill_model",
    "fast_backtest",
    "fast_params",
    "fast_path_ok",
    "simulate_targets",
]
