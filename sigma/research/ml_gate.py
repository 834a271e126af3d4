"""The ML entry gate: a stored model of the next bar's direction vetoes entries against it.

`MLGate` is an `EntryGate` of the engine, so a backtest, the simulations and the bot consult
it the same way: when an order would open or add to a position, the model's probability of a
rise after the newest bar is computed from the bars seen so far (a bounded window: the
features look back at most 50 bars, the RSI's smoothing is spent long before the window's
start). A long entry is vetoed when P(up) < threshold, a short one when P(up) > 1 - threshold;
without a model for the symbol, or while the features warm up, every order goes ahead.

`ActiveModels` holds the active version per symbol (one that beat both the naive baseline
and the ungated strategies out of sample, see `sigma.research.ml_validate`) and reloads it
when another version becomes active.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sigma.domain import Order, Side
from sigma.research.ml_tune import MODEL_NAME, load_active, p_up_of
from sigma.store.handles import Session
from sigma.store.ml_models import active_versions
from sigma.strategies.series import Data

log = logging.getLogger(__name__)

REASON = "ml gate"
WINDOW = 200
"""Bars the features are computed on per decision."""
DEFAULT_THRESHOLD = 0.45
_MAX_CALLS = 4096


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """One symbol's model in use."""

    version: int
    model: Any


@dataclass(frozen=True, slots=True)
class Veto:
    """An entry the gate refused, as reported to `on_veto`."""

    order: Order
    p_up: float
    version: int


class ActiveModels:
    """The active model version per symbol, read from `ml_models`, and their calls."""

    def __init__(self, by_symbol: Mapping[str, ActiveModel] | None = None) -> None:
        # Replaced whole on reload, so a reader in another thread sees one set or the other.
        self.by_symbol: Mapping[str, ActiveModel] = dict(by_symbol or {})
        # Every engine trading a symbol asks about the same bar (the bot's strategies and
        # every simulation): the call is computed once per bar and window.
        self._calls: dict[tuple[str, int, int, int], float | None] = {}

    def p_up(self, symbol: str, data: Data) -> tuple[int, float | None] | None:
        """The version of `symbol`'s model and its P(up) after `data`'s current bar (None
        while the features warm up), or None without a model."""
        held = self.by_symbol.get(symbol)
        if held is None:
            return None
        end = data.cursor.i + 1
        start = max(0, end - WINDOW)
        key = (symbol, held.version, int(data.ts[end - 1].astype("int64")), end - start)
        if key not in self._calls:
            if len(self._calls) >= _MAX_CALLS:
                self._calls.clear()
            close, volume = data.column("close"), data.column("volume")
            self._calls[key] = p_up_of(held.model, close[start:end], volume[start:end])
        return held.version, self._calls[key]

    def reload(self, session: Session, symbols: Iterable[str], name: str = MODEL_NAME) -> bool:
        """Read the active versions of `symbols`; only a changed version is unpickled.
        Returns True when the set in use changed."""
        active = active_versions(session, name, symbols)
        current = {symbol: held.version for symbol, held in self.by_symbol.items()}
        if active == current:
            return False
        fresh: dict[str, ActiveModel] = {}
        for symbol, version in active.items():
            held = self.by_symbol.get(symbol)
            if held is not None and held.version == version:
                fresh[symbol] = held
                continue
            loaded = load_active(session, symbol, name)
            if loaded is not None:
                fresh[symbol] = ActiveModel(loaded[0].version, loaded[1])
        self.by_symbol = fresh
        log.info("ml gate models: %s", {s: f"v{m.version}" for s, m in fresh.items()} or "none")
        return True


class MLGate:
    """Vetoes entries against the model's call (see the module docstring)."""

    reason = REASON

    def __init__(
        self,
        models: ActiveModels,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        on_veto: Callable[[Veto], None] | None = None,
    ) -> None:
        if not 0 < threshold <= 0.5:
            raise ValueError(f"the gate's threshold must be in (0, 0.5], got {threshold}")
        self.models = models
        self.threshold = threshold
        self.on_veto = on_veto

    def allows(self, order: Order, data: Data) -> bool:
        """False when the model's P(up) after the current bar is against the entry's side."""
        call = self.models.p_up(order.symbol, data)
        if call is None:
            return True
        version, p_up = call
        if p_up is None:
            return True
        against = p_up < self.threshold if order.side is Side.BUY else p_up > 1 - self.threshold
        if against and self.on_veto is not None:
            self.on_veto(Veto(order, p_up, version))
        return not against


__all__ = ["DEFAULT_THRESHOLD", "REASON", "WINDOW", "ActiveModel", "ActiveModels", "MLGate", "Veto"]
