"""The vectorised twin of a strategy: its decisions over a whole history at once.

A strategy that trades only with `go_long` / `go_short` / `go_flat` (all-in, at market) can
declare a twin, the classmethod `Strategy.targets`, which returns the exposure it asks for at
each bar's close: +1 long, -1 short, 0 flat, NaN to do nothing. A decision may depend on the
position held at that close (`if self.position > 0 and ...`), so the twin gives one array per
position (`Targets.flat`, `.long`, `.short`); the fast path (`sigma.engine.fast`) reads the
array of the position it holds, so a skipped entry (too little cash) is followed exactly as the
engine follows it. The twin must use the strategy's own indicator functions (or values proved
identical to them), so that its decisions are the engine's decisions to the last bit.

A twin may also come fused (`Strategy.fused`): its indicators, decisions, fills and equity in
one compiled pass over the bars, with no array per indicator or per position in between. It
trades through the fast path's compiled account (`sigma.strategies.next_open`) on the terms
given (`Terms`) and returns the run's outcome (`FusedRun`), which must be what executing its
`targets` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from sigma.strategies.series import FloatArray

Columns = Mapping[str, FloatArray]
"""Bar columns by name ("open", "high", "low", "close", "volume"), float64, oldest first."""

IndicatorCache = dict[tuple[Any, ...], Any]
"""Indicator values by (function name, arguments), shared by the runs of one sweep."""

IntArray = npt.NDArray[np.int64]

FULL = -2
"""A run's status when its trade book ran out of room (it runs again with more)."""

UNCHECKED = -4
"""A finished run's status when its kernel, which checks the prices it vouches for
(`Strategy.fused_checks`) as it reads them, could not vouch for all of them: one is not a
finite number above zero, or the run ended before reading them all. The run is complete;
the caller checks those prices itself (`BadHistory` when one is bad)."""

FusedRun = tuple[
    int,
    FloatArray,
    float,
    float,
    float,
    IntArray,
    IntArray,
    IntArray,
    FloatArray,
    FloatArray,
    FloatArray,
]
"""A compiled run's outcome: status (-1 done, `UNCHECKED`, `FULL`, or the bar of a target that
is not +1, -1, 0 or NaN), equity at each close, final cash, final signed quantity, fees, then
the closed round trips: entry bars, exit bars, signed lots, entry prices, exit prices, net
pnl."""


class Terms(NamedTuple):
    """The account a run trades: cash, commissions and lot size as floats."""

    initial_cash: float
    commission_pct: float
    commission_fixed: float
    lot_size: float
    lots_per_unit: float
    """Lots in one unit when the lot is 10^-k (k >= 0), else 0: units / this is then the float
    nearest the exact decimal quantity."""

    @classmethod
    def of(
        cls, initial_cash: Any, commission_pct: Any, commission_fixed: Any, lot_size: Any
    ) -> Terms:
        """Terms from numbers or Decimals; ValueError for a lot <= 0 or a negative commission."""
        cash, pct, fixed, lot = (
            float(initial_cash),
            float(commission_pct),
            float(commission_fixed),
            float(lot_size),
        )
        if lot <= 0:
            raise ValueError(f"lot_size must be > 0, got {lot_size}")
        if pct < 0 or fixed < 0:
            raise ValueError("commissions must be >= 0")
        per_unit = round(1.0 / lot)
        lots_per_unit = float(per_unit) if per_unit >= 1 and per_unit * lot == 1.0 else 0.0
        return cls(cash, pct, fixed, lot, lots_per_unit)


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


__all__ = [
    "FULL",
    "UNCHECKED",
    "Columns",
    "FusedRun",
    "IndicatorCache",
    "IntArray",
    "Targets",
    "Terms",
    "cached",
    "choose",
]
