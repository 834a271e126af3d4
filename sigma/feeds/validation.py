"""Row-level checks of a bar frame, vectorised so a million rows take milliseconds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.feeds.errors import RowNumbers
from sigma.feeds.frame import PRICE_COLUMNS, TS, check_shape

_Floats = npt.NDArray[np.float64]


def _num(value: float) -> str:
    """A float as Python prints it (``10.0``, ``9.5``), not numpy's ``np.float64(9.5)``."""
    return repr(float(value))


def _first(mask: npt.NDArray[np.bool_]) -> int | None:
    """Position of the first True, or None. argmax stops scanning at the first hit."""
    if not mask.size:
        return None
    at = int(np.argmax(mask))
    return at if mask[at] else None


def validate_bars(frame: pd.DataFrame, source: str, *, rows: RowNumbers | None = None) -> None:
    """Raise :class:`~sigma.feeds.errors.DataError` at the first bad row of a bar frame.

    Checks, in this order (a NaN would make every later comparison meaningless): the frame's
    structure, missing timestamps, NaN/inf values (funding rates too), prices <= 0, negative
    volume, high < low, high < max(open, close), low > min(open, close), then timestamps that
    repeat or go backwards.
    ``rows`` maps frame positions to the source's line/row numbers; by default rows are numbered
    1..n. An empty frame is valid (callers decide whether empty is an error).
    """
    check_shape(frame, source)
    if frame.empty:
        return
    where = rows if rows is not None else RowNumbers.rows(len(frame))
    # check_shape let through OHLCV and perhaps funding_rate, nothing else
    cols: dict[str, _Floats] = {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns}
    index = pd.DatetimeIndex(frame.index)

    at = _first(np.asarray(index.isna()))
    if at is not None:
        raise where.error(source, at, f"{TS} is missing", column=TS)
    for name, values in cols.items():
        at = _first(~np.isfinite(values))
        if at is not None:
            kind = "NaN" if np.isnan(values[at]) else "infinite"
            raise where.error(source, at, f"{name} is {kind}", column=name)
    for name in PRICE_COLUMNS:
        at = _first(cols[name] <= 0.0)
        if at is not None:
            reason = f"{name} is negative or zero ({_num(cols[name][at])})"
            raise where.error(source, at, reason, column=name)
    at = _first(cols["volume"] < 0.0)
    if at is not None:
        reason = f"volume is negative ({_num(cols['volume'][at])})"
        raise where.error(source, at, reason, column="volume")
    _check_ohlc(cols, source, where)
    _check_order(index, source, where)


def _check_ohlc(cols: dict[str, _Floats], source: str, where: RowNumbers) -> None:
    open_, high, low, close = (cols[c] for c in PRICE_COLUMNS)
    at = _first(high < low)
    if at is not None:
        reason = f"high ({_num(high[at])}) < low ({_num(low[at])})"
        raise where.error(source, at, reason, column="high")
    at = _first(high < np.maximum(open_, close))
    if at is not None:
        reason = f"high ({_num(high[at])}) < max(open, close) ({_num(max(open_[at], close[at]))})"
        raise where.error(source, at, reason, column="high")
    at = _first(low > np.minimum(open_, close))
    if at is not None:
        reason = f"low ({_num(low[at])}) > min(open, close) ({_num(min(open_[at], close[at]))})"
        raise where.error(source, at, reason, column="low")


def _check_order(index: pd.DatetimeIndex, source: str, where: RowNumbers) -> None:
    stamps = index.asi8
    step = np.diff(stamps)
    at = _first(step <= 0)
    if at is None:
        return
    row = at + 1
    stamp = index[row]
    if step[at] == 0:
        previous = int(where.numbers[at])
        reason = f"duplicate timestamp {stamp} (same as {where.kind} {previous})"
    else:
        reason = f"timestamp {stamp} is not after the previous row (unsorted)"
    raise where.error(source, row, reason, column=TS)
