"""Parameter sets per regime: hand-written defaults for the built-ins, and a fitter that finds
them from history.

The defaults follow trading common sense, not an optimiser: in a range, trend followers slow
down (fewer whipsaws) and breakout bands widen; in a trend, RSI fading leans with the trend
(buy dips in an uptrend, rarely short it); in volatile markets everything asks for more
confirmation. Whether they help on a given market is exactly what the feedback loop and
`compare_adaptive` measure - they are a starting point, not a promise.

`fit_presets` replaces intuition with evidence: it backtests candidate sets over a history,
attributes each bar's equity change to the regime the detector reported for it, and keeps per
regime the candidate that earned most there (only where that beats the baseline). It is
in-sample by nature; validate the result out of sample (`compare_adaptive` on later data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sigma.regime.adjuster import RegimePresets
from sigma.regime.detector import KNOWN_REGIMES, DetectorConfig, Regime, detect_frame
from sigma.research.backtest import run_backtest
from sigma.strategies.base import Strategy

__all__ = ["BUILTIN_PRESETS", "fit_presets"]

BUILTIN_PRESETS: RegimePresets = {
    "sma_cross": {
        Regime.TREND_UP: {"fast": 10, "slow": 30},
        Regime.TREND_DOWN: {"fast": 10, "slow": 30},
        Regime.RANGE: {"fast": 30, "slow": 90},
        Regime.HIGH_VOL: {"fast": 20, "slow": 60},
    },
    "rsi_reversion": {
        Regime.TREND_UP: {"oversold": 40.0, "overbought": 85.0},
        Regime.TREND_DOWN: {"oversold": 15.0, "overbought": 60.0},
        Regime.RANGE: {"oversold": 30.0, "overbought": 70.0},
        Regime.HIGH_VOL: {"oversold": 20.0, "overbought": 80.0},
    },
    "bollinger_breakout": {
        Regime.TREND_UP: {"k": 1.5},
        Regime.TREND_DOWN: {"k": 1.5},
        Regime.RANGE: {"k": 3.0},
        Regime.HIGH_VOL: {"k": 2.5, "period": 30},
    },
    "donchian_trend": {
        Regime.TREND_UP: {"entry": 20, "exit": 10},
        Regime.TREND_DOWN: {"entry": 20, "exit": 10},
        Regime.RANGE: {"entry": 60, "exit": 20},
        Regime.HIGH_VOL: {"entry": 40, "exit": 20},
    },
}


def fit_presets(
    cls: type[Strategy],
    bars: pd.DataFrame,
    candidates: Sequence[Mapping[str, Any]],
    *,
    symbol: str = "SYM",
    baseline: Mapping[str, Any] | None = None,
    config: DetectorConfig | None = None,
) -> dict[Regime, dict[str, Any]]:
    """Per regime, the candidate (a partial parameter set over `baseline`) whose equity grew
    most on the bars of that regime - when it beat the baseline there."""
    base = dict(baseline or {})
    regimes = np.array([s.regime.value for s in detect_frame(bars, symbol=symbol, config=config)])
    scored: list[tuple[dict[str, Any], dict[Regime, float]]] = []
    for candidate in [{}, *candidates]:
        result, _ = run_backtest(cls(**{**base, **candidate}), bars, symbol=symbol)
        equity = result.equity.to_numpy(dtype=np.float64)
        # The change over bar i belongs to the regime known when bar i-1 closed (when the
        # position held through bar i was decided).
        growth = np.diff(np.log(equity))
        decided = regimes[:-1]
        scored.append(
            (dict(candidate), {r: float(growth[decided == r.value].sum()) for r in KNOWN_REGIMES})
        )
    base_score = scored[0][1]
    presets: dict[Regime, dict[str, Any]] = {}
    for regime in KNOWN_REGIMES:
        best, score = max(scored, key=lambda item: item[1][regime])
        if score[regime] > base_score[regime]:
            presets[regime] = best
    return presets
