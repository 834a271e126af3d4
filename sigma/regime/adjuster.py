"""ParamAdjuster: move each strategy's parameters toward the set meant for the current regime.

The adjuster holds, per (strategy, symbol), the baseline parameters (what the strategy started
with) and the parameters in force. When the regime changes it computes a target (the baseline
overlaid with the regime's preset) and steps toward it. The presets of a strategy are the ones
the adjuster was given for its name (hand-written, or found by `fit_presets`), else the ones
the strategy class declares in `Strategy.regime_params`:

* every value is clamped into its `Param` bounds and coerced to its type;
* a numeric value moves at most ``max_step`` of its current size per change (at least one unit
  for integers), so a strategy is nudged, not yanked - reaching a distant target takes several
  changes;
* changes of one (strategy, symbol) are at least ``cooldown_bars`` bars apart and at most
  ``max_changes_per_day`` per rolling 24 hours;
* the result must satisfy the strategy's own `validate` (e.g. fast < slow); when a partial
  step would not, the adjuster jumps to the target (every target is validated when the
  strategy is registered, so an invalid preset is caught at start, not mid-session).

An optional `gate` (the `StrategyTester` through the hook) is asked before each adjustment;
a refused change is not applied, waits out a cool-down before it is tried again, and is kept in
`refused` (with the gate's reason) for the loop to report.

It never writes anything itself: it returns `ParamUpdate`s saying old, new, why and who; the
hook applies them to the running strategy and the sinks store them (`strategy_param` with its
history). A regime whose preset the feedback loop found harmful is `block`ed: for it the target
is the baseline again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sigma.regime.detector import KNOWN_REGIMES, Regime, RegimeState
from sigma.regime.tester import ChangeGate
from sigma.strategies.base import Strategy
from sigma.strategies.params import Param

__all__ = [
    "ADJUSTER",
    "AdjusterConfig",
    "ParamAdjuster",
    "ParamUpdate",
    "RegimePresets",
]

ADJUSTER = "regime.adjuster"
RegimePresets = Mapping[str, Mapping[Regime, Mapping[str, Any]]]
"""Per strategy name, per regime, the parameter values to use (a partial set over the
baseline)."""


@dataclass(frozen=True, slots=True)
class ParamUpdate:
    """One change of one strategy's parameters on one symbol."""

    strategy: str
    symbol: str
    ts: datetime
    regime: Regime
    old: dict[str, Any]
    new: dict[str, Any]
    reason: str
    changed_by: str
    kind: str = "adjust"  # "adjust" toward a preset, "rollback" to the baseline, or "refused"

    @property
    def changes(self) -> dict[str, tuple[Any, Any]]:
        """The parameters that changed, as (old, new)."""
        return {k: (self.old.get(k), v) for k, v in self.new.items() if self.old.get(k) != v}


@dataclass(frozen=True, slots=True)
class AdjusterConfig:
    """Smoothing and rate limits of parameter changes."""

    max_step: float = 0.5
    cooldown_bars: int = 20
    max_changes_per_day: int = 24
    changed_by: str = ADJUSTER

    def __post_init__(self) -> None:
        if self.max_step <= 0 or self.cooldown_bars < 0 or self.max_changes_per_day < 1:
            raise ValueError("need max_step > 0, cooldown_bars >= 0, max_changes_per_day >= 1")


@dataclass(slots=True)
class _Slot:
    cls: type[Strategy]
    baseline: dict[str, Any]
    current: dict[str, Any]
    bars_since_change: int
    presets: dict[Regime, dict[str, Any]]
    recent: deque[datetime] = field(default_factory=deque)
    blocked: set[Regime] = field(default_factory=set)


class ParamAdjuster:
    """Regime -> parameters for every registered (strategy, symbol)."""

    def __init__(self, presets: RegimePresets, config: AdjusterConfig | None = None) -> None:
        self.presets = presets
        self.config = config or AdjusterConfig()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._by_symbol: dict[str, list[str]] = {}
        self.gate: ChangeGate | None = None
        self.refused: list[ParamUpdate] = []
        self._pinned: set[tuple[str, str]] = set()

    def register(
        self,
        cls: type[Strategy],
        symbol: str,
        params: Mapping[str, Any],
        *,
        baseline: Mapping[str, Any] | None = None,
        blocked: Iterable[Regime] = (),
    ) -> None:
        """Adjust `cls` on `symbol`, starting from `params`. The baseline (the rollback target)
        is `params` too unless given: a restart resumes with the adjusted parameters in force
        and the baseline and `blocked` regimes saved before it."""
        key = (cls.name, symbol)
        if key in self._slots:
            raise ValueError(f"{cls.name} on {symbol} is already registered")
        base = dict(params if baseline is None else baseline)
        presets = self._presets_for(cls)
        _check_presets(cls, base, presets)
        if baseline is not None:
            try:
                cls(**base)
            except ValueError as exc:
                raise ValueError(f"baseline of {cls.name}: {exc}") from None
        # Start ready to act: the first regime should not wait out a cool-down.
        slot = _Slot(cls, base, dict(params), self.config.cooldown_bars, presets)
        slot.blocked.update(blocked)
        self._slots[key] = slot
        self._by_symbol.setdefault(symbol, []).append(cls.name)

    def rebase(self, strategy: str, symbol: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Make `params` (over the baseline) the new baseline and the parameters in force, as an
        operator's change does; the regimes blocked against the old baseline are tried again.
        Raises ValueError, changing nothing, when the set or a preset over it is invalid.
        Returns the new baseline."""
        slot = self._slot(strategy, symbol)
        base = slot.cls(**{**slot.baseline, **params}).params
        _check_presets(slot.cls, base, slot.presets)
        slot.baseline, slot.current = base, dict(base)
        slot.blocked.clear()
        return dict(base)

    def pin(self, strategy: str, symbol: str, pinned: bool) -> None:
        """Keep the parameters of `strategy` on `symbol` as they are (`pinned`: an operator
        set them by hand) or let the adjuster move them again."""
        self._slot(strategy, symbol)  # an unknown pair is a typo: fail loudly
        if pinned:
            self._pinned.add((strategy, symbol))
        else:
            self._pinned.discard((strategy, symbol))

    def is_pinned(self, strategy: str, symbol: str) -> bool:
        """True while an operator's pin keeps the adjuster off this (strategy, symbol)."""
        return (strategy, symbol) in self._pinned

    def current(self, strategy: str, symbol: str) -> dict[str, Any]:
        """The parameters in force."""
        return dict(self._slot(strategy, symbol).current)

    def baseline(self, strategy: str, symbol: str) -> dict[str, Any]:
        """The parameters the strategy started with (the rollback target)."""
        return dict(self._slot(strategy, symbol).baseline)

    def is_adjusted(self, strategy: str, symbol: str) -> bool:
        """True while the parameters in force differ from the baseline."""
        slot = self._slot(strategy, symbol)
        return slot.current != slot.baseline

    def blocked(self, strategy: str, symbol: str) -> frozenset[Regime]:
        """Regimes whose preset is no longer used for this (strategy, symbol)."""
        return frozenset(self._slot(strategy, symbol).blocked)

    def on_regime(self, state: RegimeState) -> list[ParamUpdate]:
        """One bar passed on `state.symbol`: step every strategy there toward its target."""
        updates = []
        for name in self._by_symbol.get(state.symbol, []):
            slot = self._slots[(name, state.symbol)]
            slot.bars_since_change += 1
            if (name, state.symbol) in self._pinned:
                continue
            update = self._step(name, state, slot)
            if update is not None:
                updates.append(update)
        return updates

    def rollback(
        self, strategy: str, symbol: str, regime: Regime, ts: datetime, reason: str, by: str
    ) -> ParamUpdate | None:
        """Stop using `regime`'s preset and return to the baseline at once (no cool-down:
        undoing a harmful change is not rate-limited). None when already at the baseline, or
        pinned: the regime is blocked, the operator's parameters stay."""
        slot = self._slot(strategy, symbol)
        slot.blocked.add(regime)
        if slot.current == slot.baseline or (strategy, symbol) in self._pinned:
            return None
        return self._commit(
            strategy, symbol, slot, ts, regime, dict(slot.baseline), reason, by, "rollback"
        )

    def target(self, strategy: str, symbol: str, regime: Regime) -> dict[str, Any]:
        """Where the parameters of `strategy` on `symbol` should go in `regime`."""
        slot = self._slot(strategy, symbol)
        if regime in slot.blocked:
            return dict(slot.baseline)
        return {**slot.baseline, **slot.presets.get(regime, {})}

    def _presets_for(self, cls: type[Strategy]) -> dict[Regime, dict[str, Any]]:
        """The presets given for `cls.name`, else the ones `cls` declares (checked by name)."""
        given = self.presets.get(cls.name)
        if given is not None:
            return {regime: dict(preset) for regime, preset in given.items()}
        declared: dict[Regime, dict[str, Any]] = {}
        known = {regime.value: regime for regime in KNOWN_REGIMES}
        for name, preset in cls.regime_params.items():
            if name not in known:
                raise ValueError(
                    f"{cls.name} declares parameters for {name!r}, not a regime "
                    f"({', '.join(known)})"
                )
            declared[known[name]] = dict(preset)
        return declared

    def _slot(self, strategy: str, symbol: str) -> _Slot:
        try:
            return self._slots[(strategy, symbol)]
        except KeyError:
            raise KeyError(f"{strategy} on {symbol} is not registered") from None

    def _step(self, name: str, state: RegimeState, slot: _Slot) -> ParamUpdate | None:
        cfg = self.config
        if state.regime is Regime.UNKNOWN:
            return None
        goal = self.target(name, state.symbol, state.regime)
        if goal == slot.current or slot.bars_since_change < cfg.cooldown_bars:
            return None
        while slot.recent and state.ts - slot.recent[0] >= timedelta(days=1):
            slot.recent.popleft()
        if len(slot.recent) >= cfg.max_changes_per_day:
            return None
        specs = slot.cls.param_specs()
        step = {k: _toward(specs[k], slot.current[k], v, cfg.max_step) for k, v in goal.items()}
        # The target itself was validated at registration (baseline plus preset, or baseline).
        new = step if _valid(slot.cls, step) else goal
        refusal = (
            None if self.gate is None else self.gate(slot.cls, state.symbol, slot.current, new)
        )
        moved = ", ".join(
            f"{k} {slot.current[k]}->{v}" for k, v in new.items() if slot.current[k] != v
        )
        partial = "" if new == goal else " (partway; bounded step)"
        reason = f"regime {state.regime.value}: {moved}{partial}. {state.reason}"
        if refusal is not None:
            slot.bars_since_change = 0
            self.refused.append(
                ParamUpdate(
                    name,
                    state.symbol,
                    state.ts,
                    state.regime,
                    dict(slot.current),
                    new,
                    f"{refusal}; wanted {reason}",
                    cfg.changed_by,
                    "refused",
                )
            )
            return None
        return self._commit(
            name, state.symbol, slot, state.ts, state.regime, new, reason, cfg.changed_by, "adjust"
        )

    def _commit(
        self,
        name: str,
        symbol: str,
        slot: _Slot,
        ts: datetime,
        regime: Regime,
        new: dict[str, Any],
        reason: str,
        by: str,
        kind: str,
    ) -> ParamUpdate:
        old, slot.current = slot.current, new
        slot.bars_since_change = 0
        slot.recent.append(ts)
        return ParamUpdate(name, symbol, ts, regime, old, dict(new), reason, by, kind)


def _check_presets(
    cls: type[Strategy], base: Mapping[str, Any], presets: Mapping[Regime, Mapping[str, Any]]
) -> None:
    """Every preset over `base` must make a valid strategy: a bad preset is caught when it is
    set up, not when its regime comes."""
    for regime, preset in presets.items():
        try:
            cls(**{**base, **preset})
        except ValueError as exc:
            raise ValueError(f"preset for {cls.name} in {regime.value}: {exc}") from None


def _valid(cls: type[Strategy], params: Mapping[str, Any]) -> bool:
    try:
        cls(**params)
    except ValueError:
        return False
    return True


def _toward(spec: Param[Any], current: Any, goal: Any, max_step: float) -> Any:
    """`current` moved toward `goal` by at most `max_step` of its size.

    Both ends are inside the parameter's bounds (presets are checked at registration), so every
    point between them is too; `coerce` still checks, as the last word on bounds and type."""
    if isinstance(goal, bool) or not isinstance(goal, int | float | Decimal) or current == goal:
        return spec.coerce(spec.name, goal)
    allowed = abs(float(current)) * max_step
    if isinstance(spec.default, int):
        allowed = max(math.floor(allowed), 1)
    delta = float(goal) - float(current)
    moved = float(current) + math.copysign(min(abs(delta), allowed), delta)
    if isinstance(spec.default, int):
        return spec.coerce(spec.name, round(moved))
    if isinstance(spec.default, Decimal):
        return spec.coerce(spec.name, Decimal(repr(moved)))
    return spec.coerce(spec.name, moved)
