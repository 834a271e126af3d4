"""Bar data as a strategy sees it: arrays that end at the current bar.

A `Series` wraps a numpy array and a shared cursor; `s[-1]` is the value at the current bar,
`s[-2]` the one before. Nothing past the cursor is reachable, so a strategy cannot look ahead
even when the engine precomputed an indicator over the whole history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

COLUMNS = ("open", "high", "low", "close", "volume")


Floats = list[Any] | memoryview
"""What a series is read through while stepping (see `float_reader`)."""


def float_reader(values: npt.NDArray[Any]) -> Floats:
    """`values` indexable as Python numbers: a memoryview of a native float64 array (no
    copy: it reads the array's memory, and sees the array written in place), else the
    array's `tolist()` (the Python numbers of any other dtype, as numpy converts them)."""
    if values.ndim == 1 and values.dtype == np.float64 and values.dtype.isnative:
        return values.data  # a memoryview of the array itself
    return values.tolist()  # type: ignore[no-any-return]


class Cursor:
    """Index of the current bar, shared by every series of one run."""

    __slots__ = ("i",)

    def __init__(self) -> None:
        self.i = -1


class Series:
    """A read-only view of `values[: cursor.i + 1]` indexed from the end."""

    __slots__ = ("_cursor", "_floats", "_values", "name")

    def __init__(self, values: FloatArray, cursor: Cursor, name: str = "") -> None:
        self._values = values
        self._floats: Floats | None = None
        self._cursor = cursor
        self.name = name

    @property
    def values(self) -> FloatArray:
        """The whole stored array (indicator input); reading past the cursor is look-ahead."""
        return self._values

    @values.setter
    def values(self, values: FloatArray) -> None:
        self._values = values
        self._floats = None

    def changed(self) -> None:
        """The stored array was written in place (a live bar): forget the float copy."""
        self._floats = None

    def _as_floats(self) -> Floats:
        # A strategy reads a few values per bar: indexing the array boxes a numpy scalar each
        # time, at several times the cost of reading a Python float. A float64 array is read
        # through a memoryview, which gives Python floats and shares the array's memory (a
        # list of its floats, as before, held 32 bytes a value: 32 MB per series of a million
        # bars, most of a run's peak memory); any other array is converted once to a list.
        floats = self._floats
        if floats is None:
            floats = self._floats = float_reader(self._values)
        return floats

    def __len__(self) -> int:
        return self._cursor.i + 1

    def __getitem__(self, key: int | slice) -> Any:
        end = self._cursor.i + 1
        if isinstance(key, slice):
            return self._values[:end][key]
        if key >= 0:
            if key >= end:
                raise IndexError(f"{self.name}[{key}] is beyond the current bar")
            return (self._floats or self._as_floats())[key]
        if -key > end:
            raise IndexError(f"{self.name}[{key}] is before the first bar")
        return (self._floats or self._as_floats())[end + key]

    def __float__(self) -> float:
        return self[-1]  # type: ignore[no-any-return]

    def to_numpy(self) -> FloatArray:
        """The values up to and including the current bar."""
        return self._values[: self._cursor.i + 1]

    def __repr__(self) -> str:
        return f"Series({self.name!r}, len={len(self)})"


def crossed_above(a: Series, b: Series | float) -> bool:
    """True when `a` was below `b` on the previous bar and is above it now.

    Strict on both bars (as backtesting.py's `crossover`), so touching without crossing and
    NaN warm-up values never count."""
    i = a._cursor.i
    if i < 1:
        return False
    av = a._floats or a._as_floats()
    if not isinstance(b, Series):
        return bool(av[i - 1] < b and av[i] > b)
    if b._cursor is not a._cursor:
        return bool(av[i - 1] < b[-2] and av[i] > b[-1])
    bv = b._floats or b._as_floats()
    return av[i - 1] < bv[i - 1] and av[i] > bv[i]


def crossed_below(a: Series, b: Series | float) -> bool:
    """True when `a` was above `b` on the previous bar and is below it now (strict)."""
    i = a._cursor.i
    if i < 1:
        return False
    av = a._floats or a._as_floats()
    if not isinstance(b, Series):
        return bool(av[i - 1] > b and av[i] < b)
    if b._cursor is not a._cursor:
        return bool(av[i - 1] > b[-2] and av[i] < b[-1])
    bv = b._floats or b._as_floats()
    return av[i - 1] > bv[i - 1] and av[i] < bv[i]


class Data:
    """OHLCV arrays of one symbol, plus timestamps, with room to grow for live feeds."""

    def __init__(
        self, columns: dict[str, FloatArray], ts: npt.NDArray[np.datetime64], cursor: Cursor
    ) -> None:
        self.cursor = cursor
        self._columns = {
            name: np.ascontiguousarray(columns[name], dtype=np.float64) for name in COLUMNS
        }
        self._ts = ts.astype("datetime64[ns]", copy=False)
        self._ns = self._ts.view(np.int64)  # the stamps as integers, which `time` reads
        self._length = len(ts)
        self._series = {name: Series(arr, cursor, name) for name, arr in self._columns.items()}
        # The latest bar time asked for, and its bar (orders and fills of a bar ask for it
        # several times).
        self._time_at = -1
        self._time = _EPOCH

    @property
    def open(self) -> Series:
        """Opening prices."""
        return self._series["open"]

    @property
    def high(self) -> Series:
        """Highs."""
        return self._series["high"]

    @property
    def low(self) -> Series:
        """Lows."""
        return self._series["low"]

    @property
    def close(self) -> Series:
        """Closing prices."""
        return self._series["close"]

    @property
    def volume(self) -> Series:
        """Volumes."""
        return self._series["volume"]

    def __len__(self) -> int:
        return self._length

    def value(self, name: str, i: int) -> float:
        """Stored value `i` of a column (as `column(name)[i]`, as a Python float)."""
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError(f"{name}[{i}] is not a stored bar")
        return self._columns[name].item(i)  # type: ignore[no-any-return]

    def column(self, name: str) -> FloatArray:
        """The whole stored array of a column (indicator input), current bar last in live mode."""
        return self._columns[name][: self._length]

    @property
    def ts(self) -> npt.NDArray[np.datetime64]:
        """Bar timestamps (UTC, datetime64[ns])."""
        return self._ts[: self._length]

    def time(self, i: int) -> datetime:
        """Time of stored bar `i` (0 <= i < len) as an aware UTC datetime, in whole
        microseconds as `pd.Timestamp(ts, tz="UTC").to_pydatetime()` gives it."""
        if i == self._time_at:
            return self._time
        if not 0 <= i < self._length:
            raise IndexError(f"bar {i} is not stored")
        # Positional: timedelta's keyword arguments cost a third of the conversion.
        when = self._time = _EPOCH + timedelta(0, 0, self._ns.item(i) // 1000)
        self._time_at = i
        return when

    def frame(self, start: int = 0, end: int | None = None) -> pd.DataFrame:
        """Bars `start` to `end` (default: the last stored) as an OHLCV frame on a UTC index
        named ``ts``, the shape backtests and the tester take. The frame holds copies, so it
        may be read in another thread while bars are appended."""
        stop = self._length if end is None else min(end, self._length)
        index = pd.DatetimeIndex(self._ts[start:stop], name="ts", copy=True).tz_localize("UTC")
        return pd.DataFrame(
            {name: self._columns[name][start:stop] for name in COLUMNS}, index=index
        )

    def append(self, ts: np.datetime64, values: dict[str, float]) -> None:
        """Add one bar at the end (live and paper modes), growing storage geometrically."""
        if self._length == len(self._ts):
            capacity = max(16, 2 * self._length)
            self._ts = np.resize(self._ts, capacity)
            self._ns = self._ts.view(np.int64)
            for name in COLUMNS:
                self._columns[name] = np.resize(self._columns[name], capacity)
                self._series[name].values = self._columns[name]
        self._ts[self._length] = ts
        for name in COLUMNS:
            self._columns[name][self._length] = values[name]
            self._series[name].changed()
        self._length += 1

    def drop_float_copies(self) -> None:
        """Forget the columns' float copies (see `Series.changed`): a finished run frees them."""
        for series in self._series.values():
            series.changed()

    def drop_oldest(self, count: int) -> None:
        """Forget the first `count` bars (a live run keeps a bounded history)."""
        count = min(count, self._length)
        keep = self._length - count
        self._ts[:keep] = self._ts[count : self._length]
        for name in COLUMNS:
            self._columns[name][:keep] = self._columns[name][count : self._length]
            self._series[name].changed()
        self._length = keep
        self._time_at = -1
        self.cursor.i = min(self.cursor.i, keep - 1)
