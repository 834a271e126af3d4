"""The look-ahead check: does a strategy decide anything with prices it could not have seen?

An indicator is computed over the whole history at once, so one that reads the future (a
`shift(-1)`, a centred window, a normalisation by the whole series' mean) goes unnoticed by
the engine and turns any strategy into a money machine. The check runs the strategy on the
full history and again on histories cut short at several bars, and compares what both runs
saw and did up to each cut: every indicator value, then every order (side, type, size, price,
bar). A causal strategy agrees exactly; the first disagreement is reported.

    finding = check_lookahead(SmaCross(fast=10, slow=30), bars)
    if finding is not None:
        print(finding)  # look-ahead in sma_cross: indicator 'fast_ma' at bar 99 ...
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from sigma.domain import Order
from sigma.engine.engine import Engine
from sigma.engine.fill_model import FillModel
from sigma.research.backtest import run_backtest
from sigma.strategies.base import Strategy
from sigma.strategies.series import FloatArray

DEFAULT_CUTS = 8
"""Truncated runs per check."""


@dataclass(frozen=True, slots=True)
class LookAhead:
    """Where a run on the first `cut` bars disagrees with the run on all `bars` bars."""

    strategy: str
    what: str  # "indicator 'fast_ma'" or "order"
    bar: int
    time: pd.Timestamp
    full: str  # the value (or order) on all bars
    truncated: str  # the value (or order) on the first `cut` bars
    cut: int
    bars: int

    def __str__(self) -> str:
        return (
            f"look-ahead in {self.strategy}: {self.what} at bar {self.bar} "
            f"({self.time.isoformat()}) is {self.full} on all {self.bars:,} bars but "
            f"{self.truncated} on the first {self.cut:,}: it reads bars after its own"
        )


def cut_points(n_bars: int, cuts: int = DEFAULT_CUTS) -> list[int]:
    """`cuts` history lengths spread over the second to the last tenth of `n_bars` bars."""
    if cuts < 1:
        raise ValueError(f"cuts must be >= 1, got {cuts}")
    if n_bars < 2:
        return []
    lo = max(1, n_bars // 10)
    return sorted({round(k) for k in np.linspace(lo, n_bars - 1, cuts)})


def check_lookahead(
    strategy: Strategy,
    bars: pd.DataFrame,
    *,
    cuts: int = DEFAULT_CUTS,
    initial_cash: Decimal = Decimal(10_000),
    fill_model: FillModel | None = None,
) -> LookAhead | None:
    """The first look-ahead of `strategy` (its parameters, fresh instances) on `bars`, or None
    when every truncated run agrees with the full one. Runs the exact engine 1 + `cuts`
    times (the truncated runs on fewer bars)."""

    def run(frame: pd.DataFrame) -> Engine:
        fresh = type(strategy)(**strategy.params)
        return run_backtest(
            fresh, frame, symbol="LOOKAHEAD", initial_cash=initial_cash, fill_model=fill_model
        )[1]

    full = run(bars)
    lines = full.strategy.indicator_lines()
    orders = [_signal(order) for order in full.orders]
    # A history cut before an indicator's first value starts its run early (backtesting.py
    # counts an indicator with no value as ready: `Strategy.decision_start`): the engine's
    # rule, not the strategy, reads ahead there, so such a cut's orders are not compared.
    start = full.strategy.decision_start(final=True)
    index = pd.DatetimeIndex(bars.index)
    for cut in cut_points(len(bars), cuts):
        part = run(bars.iloc[:cut])
        where = _indicator_difference(lines, part.strategy.indicator_lines(), cut)
        if where is not None:
            what, bar, want, got = where
        elif start is not None and cut < start:
            continue
        else:
            until = index[cut - 1]
            seen = [o for o in orders if o[0] <= until]
            found = _order_difference(seen, [_signal(o) for o in part.orders])
            if found is None:
                continue
            want, got = (_describe(o) for o in found)
            when = min(o[0] for o in found if o is not None)
            bar = int(index.searchsorted(when))
            what = "order"
        return LookAhead(strategy.name, what, bar, index[bar], want, got, cut, len(bars))
    return None


_Signal = tuple[Any, ...]


def _signal(order: Order) -> _Signal:
    """What a strategy decided, without the run's identifiers and fill state."""
    return (
        order.created_at,
        order.side.value,
        order.type.value,
        order.qty,
        order.equity_fraction,
        order.limit_price,
        order.stop_price,
        order.reduce_only,
        order.tag,
    )


def _describe(signal: _Signal | None) -> str:
    if signal is None:
        return "no order"
    side, kind, qty, fraction, limit, stop = signal[1:7]
    size = f"qty {qty}" if qty is not None else f"fraction {fraction}"
    price = f" limit {limit}" if limit is not None else (f" stop {stop}" if stop else "")
    return f"{kind} {side} {size}{price}"


def _order_difference(
    full: list[_Signal], part: list[_Signal]
) -> tuple[_Signal | None, _Signal | None] | None:
    for k in range(max(len(full), len(part))):
        want = full[k] if k < len(full) else None
        got = part[k] if k < len(part) else None
        if want != got:
            return want, got
    return None


def _indicator_difference(
    full: list[tuple[str, FloatArray]], part: list[tuple[str, FloatArray]], cut: int
) -> tuple[str, int, str, str] | None:
    """The earliest (what, bar, full value, truncated value) where the lines differ."""
    if len(full) != len(part):  # `init` declared indicators by how long the history is
        return "the number of indicators", cut - 1, str(len(full)), str(len(part))
    first: tuple[str, int, str, str] | None = None
    for (name, whole), (_, head) in zip(full, part, strict=True):
        a, b = whole[:cut], head[:cut]
        differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        hits = np.flatnonzero(differs)
        if hits.size and (first is None or hits[0] < first[1]):
            bar = int(hits[0])
            first = (f"indicator {name!r}", bar, repr(float(a[bar])), repr(float(b[bar])))
    return first


__all__ = ["DEFAULT_CUTS", "LookAhead", "check_lookahead", "cut_points"]
