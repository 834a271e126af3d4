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
that defines the twin runs here, fused (`Strategy.fused`: decisions and fills in one pass)
when it offers that, else by executing its targets. The account itself is compiled in
`sigma.strategies.next_open`, where the fused kernels reach it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numba
import numpy as np
import pandas as pd

from sigma.engine.fast_checks import check_ahead, check_prices
from sigma.engine.fill_model import FillModel, FillTiming
from sigma.engine.history_check import PRICES
from sigma.engine.margin import FUNDING_COLUMN, MarginModel
from sigma.strategies import next_open
from sigma.strategies.base import Strategy
from sigma.strategies.next_open import BeyondFastPath
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import (
    UNCHECKED,
    Columns,
    FusedRun,
    IndicatorCache,
    IntArray,
    Targets,
    Terms,
)


@dataclass(frozen=True, slots=True)
class FastResult:
    """Outcome of `simulate_targets`: the equity curve at each close and the closed trades
    as parallel arrays (`lots` and `qty` are signed: > 0 long, < 0 short; `pnl` is net of
    both fees)."""

    equity: FloatArray
    final_equity: float
    final_cash: float
    final_qty: float
    fees: float
    entry_bar: IntArray
    exit_bar: IntArray
    lots: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    pnl: FloatArray
    terms: Terms

    @property
    def qty(self) -> FloatArray:
        """Each round trip's signed quantity: its lots in units (made when asked for: most
        runs, a sweep's or an optimiser's, are judged on their equity alone)."""
        per_unit, lot = self.terms.lots_per_unit, self.terms.lot_size
        return np.asarray(self.lots / per_unit if per_unit else self.lots * lot, dtype=np.float64)

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


# --- the compiled loop ------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _simulate(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    close: FloatArray,
    when_flat: FloatArray,
    when_long: FloatArray,
    when_short: FloatArray,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    n = len(close)
    a, equity, lots, money = next_open.started(room, terms)
    rows = (when_flat, when_long, when_short)
    a, status = next_open.execute(a, rows, 0, n, open_, close, equity, terms, lots, money)
    return next_open.finished(status, equity, a, lots, money)


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
    terms = Terms.of(initial_cash, commission_pct, commission_fixed, lot_size)
    return _execute(open, close, targets, terms)


def _execute(open: Any, close: Any, targets: Targets | Any, terms: Terms) -> FastResult:
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
    out = next_open.run_with_room(
        lambda room: _simulate(open_, close_, *tgt, terms, room), len(close_)
    )
    if out[0] >= 0:
        raise ValueError(f"targets must be +1, -1, 0 or NaN; bar {out[0]} has another value")
    return _result(out, terms)


def _result(out: FusedRun, terms: Terms) -> FastResult:
    """The compiled run's outcome as a `FastResult` (quantities from lots)."""
    _, equity, final_cash, final_qty, fees, e_bar, x_bar, units, p_in, p_out, pnl = out
    final_equity = float(equity[-1]) if len(equity) else terms.initial_cash
    return FastResult(
        equity=equity,
        final_equity=final_equity,
        final_cash=float(final_cash),
        final_qty=float(final_qty),
        fees=float(fees),
        entry_bar=e_bar,
        exit_bar=x_bar,
        lots=units,
        entry_price=p_in,
        exit_price=p_out,
        pnl=pnl,
        terms=terms,
    )


# --- strategies ------------------------------------------------------------------------------
class BarColumns(Mapping[str, FloatArray]):
    """A bar frame's columns as float64 arrays, each converted when first read (a twin reads
    only the columns it trades on). A price column is checked as it is read (`BadHistory`
    at its first NaN, infinite, zero or negative price): the fast path answers for the
    prices it trades on, and a column it does not read costs nothing. A column in `vouched`
    is left to the kernel that reads it (`Strategy.fused_checks`), and checked here only
    when that kernel could not vouch for it (`verify`). With `ahead`, the bar times and the
    open, which every run reads, are checked while the run goes on, the open on a second
    thread unless it is vouched for (`check_ahead`; `settle` waits for them). `check=False`
    leaves missing prices to the kernels (their own tests)."""

    def __init__(
        self,
        bars: pd.DataFrame,
        *,
        check: bool = True,
        vouched: frozenset[str] = frozenset(),
        ahead: bool = False,
    ) -> None:
        self._bars = bars
        self._check = check
        self._vouched = vouched
        self._arrays: dict[str, FloatArray] = {}
        self._pending: Callable[[], None] | None = None
        if check and ahead:
            self._arrays["open"] = opens = _as_float_array("open", bars["open"])
            self._pending = check_ahead(bars, None if "open" in vouched else opens)

    def __getitem__(self, name: str) -> FloatArray:
        values = self._arrays.get(name)
        if values is None:
            values = _as_float_array(name, self._bars[name])
            if self._check and name in PRICES and name not in self._vouched:
                check_prices(self._bars, name, values)
            self._arrays[name] = values
        return values

    def settle(self) -> None:
        """Wait for the checks `ahead` started: `BadHistory` for a bar they found."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending()

    def verify(self) -> None:
        """Check the vouched price columns read so far, as any other is checked on reading
        (`BadHistory`), once the checks `ahead` are settled: their kernel could not vouch for
        them."""
        self.settle()
        if self._check:
            for name in sorted(self._vouched & self._arrays.keys(), key=PRICES.index):
                check_prices(self._bars, name, self._arrays[name])

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
    """`run_backtest` of a strategy with a vectorised twin, through the compiled path
    (`BadHistory` for bars no run can be made on, as the exact engine, in the prices it
    trades on; `BeyondFastPath` for a run whose quantities only the exact engine holds)."""
    full = fast_params(strategy, params)
    fm = fill_model or FillModel()
    check_fill_model(fm)
    if bars.empty:
        raise ValueError(f"no bars to backtest {strategy.name} on")
    terms = Terms.of(initial_cash, fm.commission_pct, fm.commission_fixed, fm.lot_size)
    columns = BarColumns(bars, vouched=_vouched(strategy), ahead=True)
    try:
        return run_twin(strategy, columns, full, terms)
    finally:  # a bad bar found meanwhile is the error to name, whatever the run did with it
        columns.settle()


def _owner(strategy: type[Strategy], name: str) -> type:
    return next(klass for klass in strategy.__mro__ if name in vars(klass))


def _fused_is_the_twin(strategy: type[Strategy]) -> bool:
    # A subclass that decides otherwise (its own `targets`) must not run the fused kernel it
    # inherits from its parent: that kernel is the parent's decisions.
    return issubclass(_owner(strategy, "fused"), _owner(strategy, "targets"))


def _vouched(strategy: type[Strategy]) -> frozenset[str]:
    """The price columns the kernel `run_twin` runs for `strategy` checks itself. A promise
    holds for the kernel of the class that made it: a subclass with a kernel of its own
    inherits none."""
    if _fused_is_the_twin(strategy) and issubclass(
        _owner(strategy, "fused_checks"), _owner(strategy, "fused")
    ):
        return strategy.fused_checks
    return frozenset()


def run_twin(
    strategy: type[Strategy],
    columns: Columns,
    params: Mapping[str, Any],
    terms: Terms,
    cache: IndicatorCache | None = None,
) -> FastResult:
    """The fast path's run of `strategy` with full, valid `params` over bar `columns`: its
    fused kernel when it has one, else its targets executed (indicators kept in `cache`)."""
    out = strategy.fused(columns, params, terms) if _fused_is_the_twin(strategy) else None
    if out is None:
        return _execute(
            columns["open"], columns["close"], strategy.targets(columns, params, cache), terms
        )
    if out[0] == UNCHECKED and isinstance(columns, BarColumns):
        columns.verify()
    return _result(out, terms)


__all__ = [
    "BarColumns",
    "BeyondFastPath",
    "FastResult",
    "check_fill_model",
    "fast_backtest",
    "fast_params",
    "fast_path_ok",
    "run_twin",
    "simulate_targets",
]
