from __future__ import annotations

import pytest

from sigma.engine.engine import Engine, EngineConfig, frame_to_data
from sigma.feeds.synthetic import generate_bars
from sigma.strategies.builtin import SmaCross
from tests.regime.helpers import Toy


def test_update_params_checks_and_keeps_old_values_on_error() -> None:
    toy = Toy()
    toy.update_params(fast=20, slow="80")
    assert (toy.fast, toy.slow) == (20, 80)
    assert toy.params["slow"] == 80
    with pytest.raises(ValueError, match="fast must be below slow"):
        toy.update_params(fast=90)
    assert toy.fast == 20 and toy.params["fast"] == 20
    with pytest.raises(ValueError, match="above its maximum"):
        toy.update_params(k=9)
    with pytest.raises(ValueError, match="no parameter"):
        toy.update_params(nope=1)


def test_a_bound_strategy_rebuilds_its_indicators() -> None:
    bars, _ = generate_bars(300, seed=1)
    strategy = SmaCross()
    engine = Engine(strategy, "SYM", frame_to_data(bars), EngineConfig())
    for i in range(100):
        engine.step(i)
    strategy.update_params(fast=5, slow=50)
    expected = bars["close"].iloc[50:100].mean()
    assert strategy.slow_ma[-1] == pytest.approx(expected)
    assert strategy.fast_ma[-1] == pytest.approx(bars["close"].iloc[95:100].mean())
