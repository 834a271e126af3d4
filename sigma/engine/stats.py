"""Performance statistics of a run, from its equity curve and closed trades.

Annualisation uses the bars actually observed per calendar year, so daily stock data
(about 252 bars a year) and 24/7 crypto minutes are both handled without a setting.
Ratios use a zero risk-free rate. Every formula, and how it differs from backtesting.py's,
is in docs/statistics.md.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.domain import Trade
from sigma.engine.trade_analytics import sqn

_SECONDS_PER_YEAR = 365.25 * 86_400


def _ratio(num: float, den: float) -> float | None:
    if den == 0 or not math.isfinite(den) or not math.isfinite(num):
        return None
    return num / den


def _cagr(growth: float, years: float) -> float | None:
    # Annualising a short run (a paper run of hours) can exceed the float range; such a
    # figure means nothing, and the statistics must still be written.
    try:
        return float(growth ** (1 / years)) - 1.0
    except OverflowError:
        return None


def drawdown(equity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Fraction below the running peak at each bar (0 at a new high, negative below it)."""
    peak = np.maximum.accumulate(equity)
    above = peak > 0
    # In place in the peak's array (as `np.where(above, equity / peak - 1.0, 0.0)`, without
    # its three temporaries: 24 MB at a million bars).
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.divide(equity, peak, out=peak)
    np.subtract(dd, 1.0, out=dd)
    dd[~above] = 0.0
    return dd


def _return_moments(equity: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """Mean, standard deviation (ddof 1) and downside deviation of the finite bar returns of
    `equity` (0 without any). The returns are computed in one array (no temporary per
    step), which is gone when the figures are."""
    if len(equity) < 2:
        return 0.0, 0.0, 0.0
    returns = np.diff(equity)
    with np.errstate(divide="ignore", invalid="ignore"):  # a liquidated account stays at 0
        np.divide(returns, equity[:-1], out=returns)
    finite = np.isfinite(returns)
    if not finite.all():
        returns = returns[finite]
    del finite
    if not returns.size:
        return 0.0, 0.0, 0.0
    mean = float(returns.mean())
    std = float(returns.std(ddof=1)) if returns.size > 1 else 0.0
    below = np.minimum(returns, 0.0, out=returns)  # the returns are read no more
    downside = float(np.sqrt(np.mean(np.square(below, out=below))))
    return mean, std, downside


def _longest_drawdown(index: pd.DatetimeIndex, dd: npt.NDArray[np.float64]) -> pd.Timedelta:
    """Longest time spent below a previous peak (until recovery or the end of data)."""
    underwater = dd < 0
    if not underwater.any():
        return pd.Timedelta(0)
    # Each underwater stretch starts at the bar after a peak and ends at the bar that recovers.
    edges = np.diff(np.concatenate(([0], underwater.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    longest = pd.Timedelta(0)
    last = len(index) - 1
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        begin: pd.Timestamp = index[max(start - 1, 0)]
        finish: pd.Timestamp = index[min(end, last)]
        longest = max(longest, finish - begin)
    return longest


def compute_stats(
    index: pd.DatetimeIndex,
    close: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
    in_market: npt.NDArray[np.bool_],
    trades: list[Trade],
    initial_cash: Decimal,
    final_equity: Decimal,
    fees_paid: Decimal,
) -> dict[str, Any]:
    """Every statistic SIGMA reports, in display order."""
    n = len(equity)
    start, end = pd.Timestamp(index[0]), pd.Timestamp(index[-1])
    span = (end - start).total_seconds()
    years = span / _SECONDS_PER_YEAR
    bars_per_year = (n - 1) / years if years > 0 else float("nan")
    initial = float(initial_cash)
    final = float(final_equity)

    mean, std, downside = _return_moments(equity)
    root = math.sqrt(bars_per_year) if math.isfinite(bars_per_year) else float("nan")

    total_return = final / initial - 1.0
    # A run that lost everything (a liquidated account) has no risk-adjusted return: the
    # arithmetic mean of its bar returns can still be positive, as backtesting.py shows 0.
    ruined = final <= 0
    cagr = _cagr(final / initial, years) if years > 0 and final > 0 else None
    dd = drawdown(equity)
    max_dd = float(dd.min()) if n else 0.0

    pnls = [t.pnl for t in trades]
    rets = [float(t.return_pct) for t in trades]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_loss = -sum(losses, Decimal(0))
    # Summed as datetime.timedelta (exact microseconds) and made a Timedelta once, one per
    # trade cost more than the rest of the statistics; in nanoseconds, as a sum of Timedeltas
    # is, so that the average is rounded as before.
    held = [t.exit_ts - t.entry_ts for t in trades]
    average_held = pd.Timedelta(sum(held, timedelta(0))).as_unit("ns") / len(held) if held else None

    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration": str(end - start),
        "bars": n,
        "exposure_pct": 100.0 * float(in_market.mean()) if n else 0.0,
        "equity_initial": initial_cash,
        "equity_final": final_equity,
        "equity_peak": float(equity.max()) if n else initial,
        "total_return_pct": 100.0 * total_return,
        "buy_hold_return_pct": 100.0 * (float(close[-1]) / float(close[0]) - 1.0),
        "cagr_pct": None if cagr is None else 100.0 * cagr,
        "volatility_ann_pct": 100.0 * std * root if std else 0.0,
        "sharpe": None if ruined else _ratio(mean * root, std),
        "sortino": None if ruined else _ratio(mean * root, downside),
        "calmar": None if cagr is None else _ratio(cagr, abs(max_dd)),
        "max_drawdown_pct": 100.0 * max_dd,
        "max_drawdown_duration": str(_longest_drawdown(index, dd)),
        "n_trades": len(trades),
        "win_rate_pct": 100.0 * len(wins) / len(trades) if trades else None,
        "best_trade_pct": 100.0 * max(rets) if rets else None,
        "worst_trade_pct": 100.0 * min(rets) if rets else None,
        "avg_trade_pct": 100.0 * float(np.mean(rets)) if rets else None,
        "profit_factor": float(sum(wins, Decimal(0)) / gross_loss) if gross_loss else None,
        "expectancy": sum(pnls, Decimal(0)) / len(pnls) if pnls else None,
        "sqn": sqn(rets),
        "avg_trade_duration": None if average_held is None else str(average_held),
        "max_trade_duration": str(pd.Timedelta(max(held))) if held else None,
        "total_fees": fees_paid,
    }
