"""StrategyTester: a parameter change must prove itself on recent data before it is applied.

The recent ``lookback`` bars are cut into ``folds`` consecutive windows (a walk forward through
time). In each window the candidate parameters and the parameters in force are backtested from
scratch; the candidate passes a window when its return trails the current one's by at most
``tolerance`` percentage points and its drawdown stays above ``max_drawdown_pct``. It must pass
at least ``min_folds_passed`` windows, else the change is refused with the figures as reason.

Rollbacks to the baseline are never tested: undoing a change must always be possible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from sigma.research.backtest import run_backtest
from sigma.strategies.base import Strategy

__all__ = ["ChangeGate", "StrategyTester", "WalkForwardConfig"]


class ChangeGate(Protocol):
    """Asked before a change: None to allow it, or the reason it is refused."""

    def __call__(
        self,
        cls: type[Strategy],
        symbol: str,
        current: Mapping[str, Any],
        candidate: Mapping[str, Any],
    ) -> str | None: ...


@dataclass(frozen=True, slots=True)
class WalkForwardConfig:
    """How much recent history a change is tested on and what it must achieve."""

    lookback: int = 1_500
    folds: int = 3
    min_folds_passed: int = 2
    tolerance: float = 0.5
    max_drawdown_pct: float = -20.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_folds_passed <= self.folds:
            raise ValueError("need 1 <= min_folds_passed <= folds")
        if self.lookback < 10 * self.folds:
            raise ValueError("lookback must give every fold at least 10 bars")


class StrategyTester:
    """Walk-forward check of a candidate parameter set (see the module docstring)."""

    def __init__(self, config: WalkForwardConfig | None = None) -> None:
        self.config = config or WalkForwardConfig()

    def check(
        self,
        cls: type[Strategy],
        current: Mapping[str, Any],
        candidate: Mapping[str, Any],
        bars: pd.DataFrame,
        *,
        symbol: str = "SYM",
    ) -> str | None:
        """None when `candidate` passes on `bars` (the newest `lookback` are used), else why
        not."""
        cfg = self.config
        recent = bars.iloc[-cfg.lookback :]
        if len(recent) < cfg.lookback:
            return f"refused: needs {cfg.lookback} recent bars to test, has {len(recent)}"
        size = len(recent) // cfg.folds
        passed, notes = 0, []
        for k in range(cfg.folds):
            window = recent.iloc[k * size : (k + 1) * size]
            new, _ = run_backtest(cls(**candidate), window, symbol=symbol)
            old, _ = run_backtest(cls(**current), window, symbol=symbol)
            new_ret, old_ret = new.stats["total_return_pct"], old.stats["total_return_pct"]
            drawdown = new.stats["max_drawdown_pct"]
            ok = new_ret >= old_ret - cfg.tolerance and drawdown >= cfg.max_drawdown_pct
            passed += ok
            notes.append(f"{new_ret:+.2f}% vs {old_ret:+.2f}% dd {drawdown:.1f}%")
        if passed >= cfg.min_folds_passed:
            return None
        return (
            f"refused: passed {passed} of {cfg.folds} walk-forward windows "
            f"(need {cfg.min_folds_passed}): " + "; ".join(notes)
        )
