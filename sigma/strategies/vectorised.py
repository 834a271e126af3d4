"""The vectorised twin of a strategy: its decisions over a whole history at once.

A strategy that trades only with `go_long` / `go_short` / `go_flat` (all-in, at market) can
declare a twin, the classmethod `Strategy.targets`, which returns the exposure it asks for at
each bar's close: +1 long, -1 short, 0 flat, NaN to do nothing. A decision may depend on the
position held at that close (`if self.position > 0 and ...`), so the twin gives one array per
position (`Targets.flat`, `.long`, `.short`); the fast path (`sigma.engine.fast`) reads the
array of the position it holds, so a skipped entry (too little cash) is followed exactly as the
engine follows it. The twin must use the strategy's own indicator functions (or values proved
identical to them), so that its decisions are the engine's decisions to the last bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from sigma.strategies.series import FloatArray

Columns = Mapping[str, FloatArray]
"""Bar columns by name ("open", "high", "low", "close", "volume"), float64, oldest first."""

IndicatorCache = dict[tuple[Any, ...], Any]
"""Indicator values by (function name, arguments), shared by the runs of one sweep."""


class Targets(NamedTuple):
    """Exposure asked for at each close (+1, -1, 0, NaN = nothing) when flat, long or short."""

    flat: FloatArray
    long: FloatArray
    short: FloatArray

    @classmethod
    def always(cls, targets: FloatArray) -> Targets:
        """Decisions that do not depend on the position held."""
        return cls(targets, targets, targets)


def cached(cache: IndicatorCache | None, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """`compute()`, kept in `cache` under `key` (computed every time without a cache)."""
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def choose(*rules: tuple[Any, float], length: int) -> FloatArray:
    """Per bar, the target of the first rule (boolean array, target) that holds, else NaN:
    the vectorised form of an `if / elif` chain of `go_*` calls."""
    conditions = [np.broadcast_to(np.asarray(c, dtype=bool), (length,)) for c, _ in rules]
    # np.select keeps the first condition that holds, as the chain does.
    return np.select(conditions, [float(t) for _, t in rules], default=np.nan)


__all__ = ["Columns", "IndicatorCache", "Targets", "cached", "choose"]
