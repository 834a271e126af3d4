from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigma.feeds.synthetic import generate_bars
from sigma.regime.backtest import build_hook, run_adaptive_backtest
from sigma.regime.presets import BUILTIN_PRESETS
from sigma.regime.tester import StrategyTester, WalkForwardConfig
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import SmaCross
from sigma.strategies.params import Param


class Direction(Strategy):
    """Holds one side all the time."""

    name = "direction"
    side = Param(1, low=-1, high=1)

    def on_bar(self) -> None:
        if self.side > 0:
            self.go_long()
        elif self.side < 0:
            self.go_short()


def rising(n: int) -> pd.DataFrame:
    close = 100.0 * np.exp(0.001 * np.arange(n))
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1000.0,
        },
        index=index,
    )


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="min_folds_passed"):
        WalkForwardConfig(folds=2, min_folds_passed=3)
    with pytest.raises(ValueError, match="lookback"):
        WalkForwardConfig(lookback=20, folds=3)


def test_a_change_must_hold_up_on_recent_windows() -> None:
    tester = StrategyTester(WalkForwardConfig(lookback=90, folds=3, min_folds_passed=2))
    bars = rising(120)
    assert tester.check(Direction, {"side": 1}, {"side": 1}, bars) is None
    reason = tester.check(Direction, {"side": 1}, {"side": -1}, bars)
    assert reason is not None and reason.startswith("refused: passed 0 of 3")
    assert reason.count(" vs ") == 3
    assert tester.check(Direction, {"side": -1}, {"side": 1}, bars) is None
    short = tester.check(Direction, {"side": 1}, {"side": 1}, bars.iloc[:50])
    assert short == "refused: needs 90 recent bars to test, has 50"


def test_hook_refuses_untested_changes_and_reports_them() -> None:
    bars, _ = generate_bars(2_500, seed=7)
    hook = build_hook(BUILTIN_PRESETS, tester=WalkForwardConfig(lookback=600, folds=3))
    run = run_adaptive_backtest(SmaCross(), bars, symbol="SYN", hook=hook)
    refused = [d for d in run.decisions if d.kind == "refused"]
    assert refused and refused[0].reason.startswith("refused: needs 600 recent bars")
    assert all("candidate" in d.details for d in refused)
    # Nothing was applied before the tester had its 600 bars of history.
    assert all(u.ts >= bars.index[599] for u in run.updates if u.kind == "adjust")
    assert {u.kind for u in run.updates} <= {"adjust", "rollback"}
