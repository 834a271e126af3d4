"""The bar frame contract shared by every part of SIGMA that handles OHLCV history.

A bar frame is a ``pandas.DataFrame`` whose index is a tz-aware UTC ``DatetimeIndex`` named
``ts`` (nanosecond resolution, strictly increasing, unique, no ``freq``) and whose columns are
exactly ``open, high, low, close, volume`` as float64, in that order, optionally followed by
``funding_rate`` (float64, finite, 0 on bars without a funding payment): the funding rate per bar
of a perpetual contract, charged by margin and futures accounts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.engine.margin import FUNDING_COLUMN
from sigma.feeds.errors import DataError

TS = "ts"
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
BAR_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
FUNDING = FUNDING_COLUMN
"""The optional last column of a bar frame: the funding rate of each bar (decimal, signed)."""
_FUNDED_COLUMNS: tuple[str, ...] = (*BAR_COLUMNS, FUNDING)
# One resolution everywhere: pandas 3 infers s/ms/us/ns per input, and frames of different units
# compare unequal and convert to different integers (``asi8``). ns is what Parquet and numpy
# code downstream have always assumed.
TS_UNIT: Literal["ns"] = "ns"
TS_DTYPE = f"datetime64[{TS_UNIT}, UTC]"


def utc_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``index`` as the contract's ts index: UTC (naive taken as UTC), ns, named, no freq.

    A ``freq`` is dropped on purpose: it is lost by any filtering anyway, and frames that differ
    only in it would compare unequal.
    """
    naive = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    values = naive.as_unit(TS_UNIT).to_numpy()
    return pd.DatetimeIndex(values, name=TS).tz_localize("UTC")


def make_bar_frame(
    ts: pd.DatetimeIndex | npt.NDArray[np.datetime64],
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
) -> pd.DataFrame:
    """Assemble a bar frame from arrays; naive timestamps are taken as UTC. No validation."""
    index = utc_index(pd.DatetimeIndex(ts))
    columns = (open_, high, low, close, volume)
    data = {
        name: np.asarray(values, dtype=np.float64)
        for name, values in zip(BAR_COLUMNS, columns, strict=True)
    }
    return pd.DataFrame(data, index=index)


def check_shape(frame: pd.DataFrame, source: str) -> None:
    """Raise DataError unless ``frame`` has the bar frame's index type and columns (OHLCV, then
    optionally ``funding_rate``).

    Only the structure is checked here (cheap, no per-row work); values are the job of
    :func:`sigma.feeds.validation.validate_bars`.
    """
    columns = [str(c) for c in frame.columns]
    missing = [c for c in BAR_COLUMNS if c not in columns]
    if missing:
        raise DataError(source, f"missing columns: {', '.join(missing)}")
    extra = [c for c in columns if c not in _FUNDED_COLUMNS]
    if extra:
        raise DataError(source, f"unexpected columns: {', '.join(extra)}")
    if tuple(columns) not in (BAR_COLUMNS, _FUNDED_COLUMNS):
        order = ", ".join(BAR_COLUMNS)
        raise DataError(source, f"columns must be in the order {order}[, {FUNDING}]")
    for name in columns:
        if frame[name].dtype != np.float64:
            raise DataError(
                source, f"{name} has dtype {frame[name].dtype}, expected float64", column=name
            )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(source, f"index must be a DatetimeIndex, not {type(index).__name__}")
    if index.tz is None or str(index.tz) != "UTC":
        raise DataError(source, f"index must be tz-aware UTC, not {index.tz}")
    if index.name != TS:
        raise DataError(source, f"index must be named {TS!r}, not {index.name!r}")
