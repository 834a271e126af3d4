"""The validation that decides live use: the strategies on the model's test window with and
without its gate; a version is active only when the gated runs made more than the ungated ones
(and its accuracy beats the baseline), and the comparison is stored with it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from sigma.engine.fill_model import FillModel
from sigma.research.ml_tune import TuneConfig, load_active
from sigma.research.ml_validate import tune_symbol
from sigma.strategies import Strategy
from tests.research.ml_helpers import trending_bars

FAST = TuneConfig(n_estimators=20)
COSTS = FillModel(commission_pct=Decimal("0.001"))


class Flipper(Strategy):
    """Long for five bars, short for five: blind to the trend the model sees."""

    name = "flipper"

    def on_bar(self) -> None:
        if self.bar_index % 5 == 0:
            self.go_long() if self.bar_index // 5 % 2 == 0 else self.go_short()


class Idle(Strategy):
    """Never trades, so a gate has nothing to improve."""

    name = "idle"

    def on_bar(self) -> None:
        return None


def test_a_gate_that_pays_is_stored_active_with_its_comparison(session: Session) -> None:
    bars = trending_bars()
    tuned = tune_symbol(session, "BTC", bars, [Flipper], config=FAST, fill_model=COSTS)
    c = tuned.comparison
    assert tuned.result.beats_baseline and c.wins and tuned.row.active
    gated, ungated = c.gated["flipper"], c.ungated["flipper"]
    assert ungated.vetoes == 0 < gated.vetoes and gated.trades < ungated.trades
    assert gated.net_pnl > ungated.net_pnl
    # The test window only: it starts where the training report says, after the purge gap.
    assert c.start == tuned.result.metrics["test_start"] == bars.index[-c.bars].isoformat()
    stored = tuned.row.metrics["gate"]
    assert stored == c.as_json()
    assert stored["beats_ungated"] is True
    assert Decimal(stored["gated_pnl"]) == gated.net_pnl
    assert stored["strategies"]["flipper"]["ungated"]["trades"] == ungated.trades
    loaded = load_active(session, "BTC")
    assert loaded is not None and loaded[0].version == tuned.row.version
    # Tuning again on the same bars is the same version.
    again = tune_symbol(session, "BTC", bars, [Flipper], config=FAST, fill_model=COSTS)
    assert again.row.version == tuned.row.version


def test_a_model_that_changes_nothing_is_stored_but_not_used(session: Session) -> None:
    bars = trending_bars(seed=1)
    tuned = tune_symbol(session, "ETH", bars, [Idle], config=FAST)
    assert tuned.result.beats_baseline  # accurate, yet it would do no work in trading
    assert not tuned.comparison.wins and not tuned.row.active
    assert tuned.comparison.gated_pnl == tuned.comparison.ungated_pnl == 0
    assert load_active(session, "ETH") is None
    assert tune_symbol(session, "ETH", bars, [], config=FAST).row.active is False
