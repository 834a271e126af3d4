"""What an optimisation maximises, chosen by name, and the constraints a trial must meet to
get a score at all.

    measured = measure(equity, per_year, pnl, objective="sortino", min_trades=5)
    measured.score      # None when excluded; then `measured.excluded` says why

Everything is computed from the scored part of a run: its equity curve (the bar before the
first scored bar first) and the net PnL of the trades closed in it. A trial without a score
is never averaged into a reported figure; the search itself sees `NO_SCORE` for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sigma.engine.trade_analytics import sqn

OBJECTIVES: dict[str, str] = {
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "calmar": "Calmar",
    "return": "return %",
    "sqn": "SQN",
}
"""Objective names (what `--objective` takes) and how reports label them."""

MIN_TRADES = 3
"""Closed trades a scored window needs before its score counts as evidence."""

NO_SCORE = -99.0
"""What the sampler sees for a trial without a score: far below any real score, yet finite so
the samplers can still learn from it. Never printed or averaged as a score."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Measured:
    """The objective's value (None when the trial is excluded, `excluded` saying why) and
    every objective's value for the trial table."""

    score: float | None
    excluded: str | None
    metrics: dict[str, float | None] = field(default_factory=dict)


def check_objective(objective: str) -> str:
    """`objective` when it is a known name; ValueError listing the names otherwise."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    return objective


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _metrics(equity: FloatArray, per_year: float, pnl: FloatArray) -> dict[str, float | None]:
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.diff(equity) / equity[:-1]
    returns = returns[np.isfinite(returns)]
    root = math.sqrt(per_year) if math.isfinite(per_year) and per_year > 0 else math.nan
    mean = float(returns.mean()) if returns.size else 0.0
    std = float(returns.std(ddof=1)) if returns.size > 1 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if returns.size else 0.0
    peak = np.maximum.accumulate(equity)
    worst = float(np.min(np.where(peak > 0, equity / peak - 1.0, 0.0)))
    growth = float(equity[-1] / equity[0])
    years = (len(equity) - 1) / per_year if math.isfinite(root) else math.nan
    try:
        cagr = growth ** (1 / years) - 1.0 if years > 0 and growth > 0 else math.nan
    except OverflowError:  # a short run annualised can leave the float range: no figure
        cagr = math.nan
    return {
        "sharpe": _finite(mean / std * root) if std > 0 else None,
        "sortino": _finite(mean / downside * root) if downside > 0 else None,
        "calmar": _finite(cagr / -worst) if worst < 0 else None,
        "return": 100.0 * (growth - 1.0),
        # R is each trade's net PnL here: sweeps on the fast path know no entry notional
        "sqn": sqn(pnl.tolist()),
        "max_drawdown_pct": 100.0 * worst,
    }


def measure(
    equity: FloatArray,
    per_year: float,
    pnl: FloatArray,
    *,
    objective: str = "sharpe",
    min_trades: int = MIN_TRADES,
    max_drawdown_pct: float | None = None,
) -> Measured:
    """Score a scored window by `objective`, or exclude it: fewer than `min_trades` closed
    trades, a drawdown deeper than `max_drawdown_pct` (a positive percentage), or an
    objective the window leaves undefined (no variation, no drawdown for Calmar)."""
    metrics = _metrics(np.asarray(equity, dtype=np.float64), per_year, pnl)
    label = OBJECTIVES[check_objective(objective)]
    deepest = -float(metrics["max_drawdown_pct"] or 0.0)
    if pnl.size < min_trades:
        return Measured(None, f"{pnl.size} trades < {min_trades}", metrics)
    if max_drawdown_pct is not None and deepest > max_drawdown_pct:
        return Measured(None, f"drawdown {deepest:.1f}% > {max_drawdown_pct:g}%", metrics)
    value = metrics[objective]
    if value is None:
        return Measured(None, f"{label} undefined", metrics)
    return Measured(value, None, metrics)


def mean_score(scores: list[float | None]) -> float | None:
    """Mean of the scores that exist (None when none does): excluded ones are left out, never
    averaged in as a number."""
    present = [s for s in scores if s is not None]
    return float(np.mean(present)) if present else None


def shown(score: float | None) -> str:
    """A score as printed: three decimals, or "no score"."""
    return "no score" if score is None else f"{score:.3f}"


__all__ = [
    "MIN_TRADES",
    "NO_SCORE",
    "OBJECTIVES",
    "Measured",
    "check_objective",
    "mean_score",
    "measure",
    "shown",
]
