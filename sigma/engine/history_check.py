"""The check a bar frame passes before a backtest runs on it (exact engine or fast path).

A NaN or infinite price, a price at or below zero, and bar times out of order leave the two
engines no meaningful run: a NaN fails deep inside the Decimal arithmetic (or, on the fast
path, turns the equity into NaN without a word), a zero price cannot be sized, and unsorted or
repeated times turn the run into another one. The loaders (`sigma.feeds.validation`) refuse
such rows with their file's line numbers; this check guards every other caller (code that
builds its frame itself) and names the bar by its position and time. Volume and funding
rates are not checked: neither is a price the engines divide by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sigma.strategies.series import FloatArray

PRICES = ("open", "high", "low", "close")


class BadHistory(ValueError):
    """A bar frame a backtest cannot run on; `bar` (0-based) and `column` say where, and
    `symbol` whose bars they are when the caller said (`of`)."""

    def __init__(self, bar: int, when: Any, column: str, reason: str, symbol: str = "") -> None:
        self.bar = bar
        self.when = when
        self.column = column
        self.reason = reason
        self.symbol = symbol
        where = f"{symbol} bar" if symbol else "bar"
        super().__init__(f"{where} {bar} ({when}): {column} {reason}")

    def of(self, symbol: str) -> BadHistory:
        """The same error, said of the bars of `symbol`."""
        return BadHistory(self.bar, self.when, self.column, self.reason, symbol)


def check_history(bars: pd.DataFrame, columns: Mapping[str, FloatArray] | None = None) -> None:
    """Raise `BadHistory` at the first bar of `bars` whose price is NaN, infinite, zero or
    negative, or whose time is not after the previous bar's. `columns` are the prices as
    float64 arrays when the caller has them already (else they are read from `bars`)."""
    for name in PRICES:
        values = columns[name] if columns is not None else bars[name].to_numpy(dtype=np.float64)
        # Two reductions without a temporary (a NaN makes both NaN, failing both tests):
        # the bad bar is looked for only when there is one.
        if len(values) and not (values.min() > 0.0 and values.max() < np.inf):
            at = int(np.argmin((values > 0.0) & (values < np.inf)))
            raise bad_price(bars, name, at, float(values[at]))
    stamps = pd.DatetimeIndex(bars.index).asi8
    later = stamps[1:] > stamps[:-1]
    if not later.all():
        raise out_of_order(bars, int(np.argmin(later)) + 1)


def bad_price(bars: pd.DataFrame, column: str, at: int, value: float) -> BadHistory:
    """The error for bar `at`'s `value` in price `column`, not a finite number above zero."""
    reason = (
        "is NaN"
        if np.isnan(value)
        else ("is infinite" if np.isinf(value) else f"is not above zero ({value!r})")
    )
    return BadHistory(at, pd.DatetimeIndex(bars.index)[at].isoformat(), column, reason)


def out_of_order(bars: pd.DataFrame, at: int) -> BadHistory:
    """The error for bar `at`, whose time is not after bar `at - 1`'s."""
    index = pd.DatetimeIndex(bars.index)
    how = "repeats" if index[at] == index[at - 1] else "is before"
    reason = f"{how} the time of bar {at - 1} (bars must be in time order, each once)"
    return BadHistory(at, index[at].isoformat(), "ts", reason)


__all__ = ["PRICES", "BadHistory", "bad_price", "check_history", "out_of_order"]
