"""Within an optimisation trial the margin guard's warnings are not logged; elsewhere they are."""

from __future__ import annotations

import threading

import pytest

from sigma.engine import margin
from sigma.engine.margin import AccountType, MarginModel
from sigma.feeds.synthetic import generate_bars
from sigma.research.backtest import run_backtest
from sigma.research.evaluation import evaluate
from sigma.research.quiet import quiet_margin
from sigma.strategies.builtin import SmaCross


def test_margin_warnings_are_dropped_only_within_the_trial_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = margin.log

    def elsewhere() -> None:
        log.warning("from another thread")

    with caplog.at_level("WARNING", logger=margin.__name__):
        with quiet_margin():
            log.warning("within a trial")
            other = threading.Thread(target=elsewhere)
            other.start()
            other.join()
        log.warning("after the trial")
        heard = [r.getMessage() for r in caplog.records]
    assert heard == ["from another thread", "after the trial"]


def test_a_trial_on_spot_says_nothing_a_backtest_says(caplog: pytest.LogCaptureFixture) -> None:
    bars, _ = generate_bars(600, seed=3, freq="1h")
    spot = MarginModel(AccountType.SPOT)
    with caplog.at_level("WARNING", logger=margin.__name__):
        evaluate(SmaCross, {}, bars, margin=spot)
        assert caplog.records == []
        run_backtest(SmaCross(), bars, symbol="X", margin=spot)
        assert "spot accounts do not sell short" in caplog.records[0].getMessage()
