from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from sigma.regime.adjuster import ADJUSTER, AdjusterConfig, ParamAdjuster
from sigma.regime.detector import Regime
from tests.regime.helpers import Toy, state

BASE = Toy().params
Presets = Mapping[str, Mapping[str, Any]]


def adjuster(presets: dict, **config: object) -> ParamAdjuster:
    adj = ParamAdjuster({"toy": presets}, AdjusterConfig(**config))  # type: ignore[arg-type]
    adj.register(Toy, "SYM", BASE)
    return adj


def test_register_checks_presets_and_duplicates() -> None:
    with pytest.raises(ValueError, match="range.*above its maximum"):
        ParamAdjuster({"toy": {Regime.RANGE: {"fast": 1000}}}).register(Toy, "SYM", BASE)
    with pytest.raises(ValueError, match="trend_up.*fast must be below slow"):
        ParamAdjuster({"toy": {Regime.TREND_UP: {"fast": 50}}}).register(Toy, "SYM", BASE)
    adj = adjuster({})
    with pytest.raises(ValueError, match="already registered"):
        adj.register(Toy, "SYM", BASE)
    with pytest.raises(KeyError, match="not registered"):
        adj.current("toy", "OTHER")
    with pytest.raises(ValueError, match="max_step"):
        AdjusterConfig(max_step=0)


def test_steps_are_bounded_spaced_and_reach_the_target() -> None:
    adj = adjuster({Regime.RANGE: {"fast": 30, "slow": 150}}, cooldown_bars=20)
    first = adj.on_regime(state(Regime.RANGE, 0))
    assert len(first) == 1
    update = first[0]
    assert update.new["fast"] == 15 and update.new["slow"] == 60  # +50% at most per change
    assert update.changes == {"fast": (10, 15), "slow": (40, 60)}
    assert update.changed_by == ADJUSTER and update.kind == "adjust"
    assert "partway" in update.reason and "regime range" in update.reason
    seen = [update]
    for i in range(1, 200):
        seen.extend(adj.on_regime(state(Regime.RANGE, i)))
    gaps = [(b.ts - a.ts).total_seconds() / 60 for a, b in itertools.pairwise(seen)]
    assert min(gaps) >= 20
    assert adj.current("toy", "SYM") == {**BASE, "fast": 30, "slow": 150}
    assert "partway" not in seen[-1].reason
    spec = Toy.param_specs()
    for u in seen:
        for key in ("fast", "slow"):
            assert spec[key].low <= u.new[key] <= spec[key].high
        Toy(**u.new)  # every intermediate set is valid
    assert adj.is_adjusted("toy", "SYM")


def test_unknown_regime_and_no_preset_change_nothing() -> None:
    adj = adjuster({Regime.RANGE: {"fast": 12}})
    assert adj.on_regime(state(Regime.UNKNOWN, 0)) == []
    assert adj.on_regime(state(Regime.HIGH_VOL, 1)) == []
    assert adj.on_regime(state(Regime.RANGE, 2, symbol="OTHER")) == []
    assert not adj.is_adjusted("toy", "SYM")


def test_daily_rate_limit() -> None:
    adj = adjuster(
        {Regime.RANGE: {"fast": 12}, Regime.HIGH_VOL: {"fast": 8}},
        cooldown_bars=0,
        max_changes_per_day=2,
    )
    changes = []
    for i in range(10):  # one bar an hour, flipping regime every bar
        regime = Regime.RANGE if i % 2 == 0 else Regime.HIGH_VOL
        changes.extend(adj.on_regime(state(regime, i, minutes=60)))
    assert len(changes) == 2
    later = adj.on_regime(state(Regime.RANGE, 24, minutes=60))
    assert len(later) == 1


def test_non_numeric_and_exact_values() -> None:
    preset = {"size": Decimal("1.2"), "short": False, "mode": "b", "k": 4.0}
    adj = adjuster({Regime.TREND_UP: preset}, max_step=0.25)
    (update,) = adj.on_regime(state(Regime.TREND_UP, 0))
    # k 2.0 -> 2.5 would break "mode b needs k >= 3", so the adjuster jumps to the target.
    assert update.new["k"] == 4.0 and update.new["mode"] == "b"
    assert update.new["size"] == Decimal("1.2") and update.new["short"] is False
    assert isinstance(update.new["size"], Decimal)


def test_small_decimal_steps_stay_decimal() -> None:
    adj = adjuster({Regime.TREND_UP: {"size": Decimal("4")}}, cooldown_bars=0)
    (update,) = adj.on_regime(state(Regime.TREND_UP, 0))
    assert update.new["size"] == Decimal("1.5")


def test_rollback_returns_to_baseline_and_blocks_the_regime() -> None:
    adj = adjuster({Regime.RANGE: {"fast": 12}}, cooldown_bars=50)
    adj.on_regime(state(Regime.RANGE, 0))
    assert adj.current("toy", "SYM")["fast"] == 12
    update = adj.rollback("toy", "SYM", Regime.RANGE, state(Regime.RANGE, 1).ts, "hurt", "me")
    assert update is not None
    assert update.kind == "rollback" and update.new == BASE and update.changed_by == "me"
    assert adj.blocked("toy", "SYM") == {Regime.RANGE}
    assert adj.target("toy", "SYM", Regime.RANGE) == BASE
    for i in range(2, 100):
        assert adj.on_regime(state(Regime.RANGE, i)) == []
    assert adj.rollback("toy", "SYM", Regime.HIGH_VOL, state(Regime.RANGE, 2).ts, "x", "me") is None
    assert adj.baseline("toy", "SYM") == BASE


class Declared(Toy):
    """A strategy that brings its own regime parameter sets."""

    name = "declared"
    regime_params: ClassVar[Presets] = {"range": {"fast": 12}, "high_vol": {"k": 3.0}}


def test_a_strategy_can_declare_its_own_presets() -> None:
    adj = ParamAdjuster({"toy": {Regime.RANGE: {"fast": 20}}})
    adj.register(Declared, "SYM", BASE)
    assert adj.target("declared", "SYM", Regime.RANGE) == {**BASE, "fast": 12}
    assert adj.target("declared", "SYM", Regime.HIGH_VOL) == {**BASE, "k": 3.0}
    assert adj.target("declared", "SYM", Regime.TREND_UP) == BASE
    (update,) = adj.on_regime(state(Regime.RANGE, 0))
    assert update.strategy == "declared" and update.new["fast"] == 12
    # Presets given to the adjuster for a strategy replace what it declares.
    given = ParamAdjuster({"declared": {Regime.TREND_UP: {"fast": 11}}})
    given.register(Declared, "SYM", BASE)
    assert given.target("declared", "SYM", Regime.RANGE) == BASE
    assert given.target("declared", "SYM", Regime.TREND_UP) == {**BASE, "fast": 11}


def test_declared_presets_are_checked_at_registration() -> None:
    class Typo(Toy):
        name = "typo"
        regime_params: ClassVar[Presets] = {"ranging": {"fast": 12}}

    class Invalid(Toy):
        name = "invalid"
        regime_params: ClassVar[Presets] = {"range": {"fast": 50}}

    with pytest.raises(ValueError, match="'ranging', not a regime"):
        ParamAdjuster({}).register(Typo, "SYM", BASE)
    with pytest.raises(ValueError, match="invalid in range: fast must be below slow"):
        ParamAdjuster({}).register(Invalid, "SYM", BASE)
