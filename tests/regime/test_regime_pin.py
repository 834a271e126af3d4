"""A pinned (strategy, symbol) - an operator's manual change - is left alone by the adjuster
until it is unpinned: no step toward a preset, no rollback."""

from __future__ import annotations

import pytest

from sigma.regime.adjuster import AdjusterConfig, ParamAdjuster
from sigma.regime.detector import Regime
from tests.regime.helpers import Toy, state

BASE = Toy().params


def test_a_pinned_pair_keeps_its_parameters_until_unpinned() -> None:
    adj = ParamAdjuster({"toy": {Regime.RANGE: {"fast": 12}}}, AdjusterConfig(cooldown_bars=0))
    adj.register(Toy, "SYM", BASE)
    adj.pin("toy", "SYM", True)
    assert adj.is_pinned("toy", "SYM")
    assert [adj.on_regime(state(Regime.RANGE, i)) for i in range(5)] == [[]] * 5
    assert adj.current("toy", "SYM") == BASE
    adj.pin("toy", "SYM", False)
    (update,) = adj.on_regime(state(Regime.RANGE, 5))
    assert update.new["fast"] == 12
    # Pinned again on the adjusted set (a pin without a change): a rollback blocks the
    # regime but leaves the parameters as the operator pinned them.
    adj.pin("toy", "SYM", True)
    assert adj.rollback("toy", "SYM", Regime.RANGE, update.ts, "hurt", "feedback") is None
    assert adj.current("toy", "SYM")["fast"] == 12
    assert adj.blocked("toy", "SYM") == frozenset({Regime.RANGE})
    with pytest.raises(KeyError, match="not registered"):
        adj.pin("toy", "OTHER", True)
