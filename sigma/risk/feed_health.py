"""FeedHealth: watches the price filter's verdicts per symbol and says when new positions on a
symbol must wait (issue 23: a filter that rejects everything left the bot trading on a frozen
price, silently).

A symbol is *paused* (`entry_pause` says why; ``""``: entries are allowed) while:

* ``blinded`` - the filter rejected at least ``alarm_ratio`` of the symbol's last ``window``
  ticks (judged once ``min_ticks`` are in). It clears at ``clear_ratio`` or below, so a ratio
  hovering at the threshold does not flap. At one tick a second a feed the filter no longer
  believes is caught after ``min_ticks`` seconds;
* ``drift`` or ``unconfirmed`` - the symbol's latest accepted price carries that doubt (see
  :class:`~sigma.risk.anomaly.Verdict`).

Closing or reducing a position is never paused (the risk check decides what reduces). Every
verdict and every change of a symbol's pause go to the ``sinks``: the metrics, the alerts.
The pause is known where the verdicts are: in the process that runs the price feed (`sigma
bot` and `sigma up` run it beside the bot); a symbol it has no verdict for is not paused.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sigma.domain import Tick
from sigma.risk.anomaly import DOUBT_DRIFT, Verdict
from sigma.risk.symbol_map import DEFAULT_MAX_SYMBOLS, SymbolMap

__all__ = ["AlertSink", "FeedHealth", "HealthChange", "HealthSink"]

log = logging.getLogger(__name__)

BLINDED = "blinded"
# The pauses worth waking someone for; "unconfirmed" is the normal first seconds of a start.
_ALERTED = (BLINDED, DOUBT_DRIFT)


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A symbol's pause changed from ``previous`` to ``pause`` (``""``: none); ``message``
    says why, ``ratio`` is the share of its recent ticks the filter rejected."""

    symbol: str
    pause: str
    previous: str
    ratio: float
    message: str


class HealthSink(Protocol):
    """Hears the verdicts and the changes (metrics, alerts); must not block."""

    def on_verdict(self, symbol: str, verdict: Verdict, ratio: float) -> None:
        """One verdict of the filter and the symbol's rejection ratio after it."""

    def on_change(self, change: HealthChange) -> None:
        """A symbol's pause changed."""


@dataclass(slots=True)
class _Symbol:
    outcomes: deque[bool]
    rejected: int = 0
    blinded: bool = False
    doubt: str = ""
    pause: str = ""
    reason: str = ""


class FeedHealth:
    """The rejection-ratio alarm and the entry pause per symbol (see the module docstring)."""

    def __init__(
        self,
        *,
        window: int = 50,
        min_ticks: int = 10,
        alarm_ratio: float = 0.2,
        clear_ratio: float = 0.05,
        sinks: Iterable[HealthSink] = (),
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        if not 1 <= min_ticks <= window:
            raise ValueError(f"need 1 <= min_ticks <= window, got {min_ticks}, {window}")
        if not 0 <= clear_ratio < alarm_ratio <= 1:
            raise ValueError(
                f"need 0 <= clear_ratio < alarm_ratio <= 1, got {clear_ratio}, {alarm_ratio}"
            )
        self.window = window
        self.min_ticks = min_ticks
        self.alarm_ratio = alarm_ratio
        self.clear_ratio = clear_ratio
        self.sinks = list(sinks)
        self._symbols: SymbolMap[str, _Symbol] = SymbolMap(max_symbols)

    def record(self, tick: Tick, verdict: Verdict) -> None:
        """Take in the filter's verdict on ``tick``."""
        state = self._symbols.get(tick.symbol)
        if state is None:
            state = _Symbol(deque(maxlen=self.window))
            self._symbols.touch(tick.symbol, state)
        rejected = not verdict.ok
        if len(state.outcomes) == self.window:
            state.rejected -= state.outcomes[0]
        state.outcomes.append(rejected)
        state.rejected += rejected
        ratio = state.rejected / len(state.outcomes)
        if len(state.outcomes) >= self.min_ticks:
            if ratio >= self.alarm_ratio:
                state.blinded = True
            elif ratio <= self.clear_ratio:
                state.blinded = False
        if verdict.ok:
            state.doubt = verdict.doubt
        for sink in self.sinks:
            sink.on_verdict(tick.symbol, verdict, ratio)
        pause = BLINDED if state.blinded else state.doubt
        if pause != state.pause:
            self._change(tick, state, pause, ratio)

    def entry_pause(self, symbol: str) -> str:
        """Why new positions on ``symbol`` must wait (``""``: they need not)."""
        state = self._symbols.get(symbol)
        return state.reason if state is not None else ""

    def ratio(self, symbol: str) -> float:
        """The share of ``symbol``'s recent ticks the filter rejected (0 before any)."""
        state = self._symbols.get(symbol)
        return state.rejected / len(state.outcomes) if state is not None else 0.0

    def _change(self, tick: Tick, state: _Symbol, pause: str, ratio: float) -> None:
        previous, state.pause = state.pause, pause
        state.reason = _reason(tick.symbol, tick.price, pause, state)
        message = state.reason or f"{tick.symbol}: prices believed again at {tick.price}"
        change = HealthChange(tick.symbol, pause, previous, ratio, message)
        log.log(logging.WARNING if pause in _ALERTED else logging.INFO, "%s", message)
        for sink in self.sinks:
            sink.on_change(change)


def _reason(symbol: str, price: Decimal, pause: str, state: _Symbol) -> str:
    if pause == BLINDED:
        return (
            f"{symbol}: the price filter rejected {state.rejected} of the last "
            f"{len(state.outcomes)} ticks; no new position until it believes the prices again"
        )
    if pause == DOUBT_DRIFT:
        return (
            f"{symbol}: price {price} drifted too far from the price the filter believes (a ramp "
            f"or a jump not yet confirmed); no new position until it catches up"
        )
    if pause:
        return f"{symbol}: first price {price} not yet confirmed; no new position until it is"
    return ""


class AlertSink:
    """Raises an alert when a symbol is blinded or its price drifted, and an all-clear when
    it is believed again; ``alert`` is ``Telemetry.alert`` (severity, message, details)."""

    def __init__(self, alert: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.alert = alert

    def on_verdict(self, symbol: str, verdict: Verdict, ratio: float) -> None:
        """Verdicts one by one are the metrics' business."""

    def on_change(self, change: HealthChange) -> None:
        """Alert on entering or leaving an alerted pause."""
        details = {"symbol": change.symbol, "pause": change.pause, "ratio": round(change.ratio, 3)}
        if change.pause in _ALERTED:
            self.alert("warning", change.message, details)
        elif change.previous in _ALERTED:
            self.alert("info", change.message, details)
