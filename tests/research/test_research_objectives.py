"""Objectives chosen by name and the constraints that exclude a window (issue 24 item 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sigma.research.objectives import (
    NO_SCORE,
    OBJECTIVES,
    check_objective,
    mean_score,
    measure,
    shown,
)

# Up 10 %, down to 99, up to 121: a 10 % drawdown and a 21 % return over 4 bars.
EQUITY = np.array([100.0, 110.0, 99.0, 110.0, 121.0])
PNL = np.array([10.0, -11.0, 22.0])


def test_every_objective_from_the_curve_and_trades() -> None:
    per_year = 4.0  # one year over the four returns
    m = measure(EQUITY, per_year, PNL, min_trades=3).metrics
    returns = np.diff(EQUITY) / EQUITY[:-1]
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * 2.0)
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    assert m["sortino"] == pytest.approx(returns.mean() / downside * 2.0)
    assert m["calmar"] == pytest.approx(0.21 / 0.10)
    assert m["return"] == pytest.approx(21.0)
    assert m["sqn"] == pytest.approx(math.sqrt(3) * PNL.mean() / PNL.std(ddof=1))
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)
    for name in OBJECTIVES:
        assert measure(EQUITY, per_year, PNL, objective=name).score == m[name]


def test_excluded_windows_say_why() -> None:
    few = measure(EQUITY, 4.0, PNL, min_trades=4)
    assert few.score is None and few.excluded == "3 trades < 4"
    deep = measure(EQUITY, 4.0, PNL, max_drawdown_pct=5)
    assert deep.score is None and deep.excluded == "drawdown 10.0% > 5%"
    assert measure(EQUITY, 4.0, PNL, max_drawdown_pct=10).score is not None
    rising = np.array([100.0, 101.0, 102.0])
    calmar = measure(rising, 2.0, PNL, objective="calmar")
    assert calmar.score is None and calmar.excluded == "Calmar undefined"
    flat = measure(np.full(4, 100.0), 3.0, np.array([1.0, 1.0, 1.0]), objective="sqn")
    assert flat.excluded == "SQN undefined" and flat.metrics["sharpe"] is None


def test_an_annualisation_out_of_range_leaves_calmar_undefined() -> None:
    # Two bars a few seconds apart, annualised: the growth leaves the float range.
    huge = measure(np.array([100.0, 50.0, 200.0]), 1e9, PNL, objective="calmar")
    assert huge.excluded == "Calmar undefined"
    no_time = measure(EQUITY, math.nan, PNL)
    assert no_time.excluded == "Sharpe undefined" and no_time.metrics["calmar"] is None


def test_names_means_and_printing() -> None:
    assert check_objective("sortino") == "sortino"
    with pytest.raises(ValueError, match="unknown objective 'alpha'; use one of sharpe, sortino"):
        check_objective("alpha")
    assert mean_score([1.0, None, 3.0]) == 2.0
    assert mean_score([None, None]) is None
    assert shown(None) == "no score" and shown(0.4321) == "0.432"
    assert NO_SCORE < -50
