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
# Steps between the bar times `Data.time` made, in microseconds: a few distinct ones per
# history (a bar's length, and its multiples up to the next order); emptied when full.
_STEPS: dict[int, timedelta] = {}
_MAX_STEPS = 4096

COLUMNS = ("open", "high", "low", "close", "volume")

_MAX_ASKED = 8  # partners a series remembers being compared with (see `_remember_crossings`)
_NOBODY = object()  # `Series._above` when no crossings are kept: no argument is this object


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

    __slots__ = ("final", "i")

    def __init__(self) -> None:
        self.i = -1
        self.final = False
        """Set while the series hold a whole history that stays as it is (a backtest steps
        through it): `crossed_above` then finds a pair's crossings for every bar at once."""


class Series:
    """A read-only view of `values[: cursor.i + 1]` indexed from the end."""

    __slots__ = (
        "_above",
        "_asked",
        "_crossed",
        "_cursor",
        "_floats",
        "_readers",
        "_values",
        "name",
    )

    def __init__(self, values: FloatArray, cursor: Cursor, name: str = "") -> None:
        self._values = values
        self._floats: Floats | None = None
        self._cursor = cursor
        self.name = name
        # The series whose crossings from below are kept (see `crossed_above`) and whether
        # self crossed above it at each bar; the series it was compared with bar by bar, and
        # from which bar; the series whose `_crossed` read these values.
        self._above: object = _NOBODY
        self._crossed: list[bool] = []
        self._asked: dict[Series, int] | None = None
        self._readers: list[Series] | None = None

    @property
    def values(self) -> FloatArray:
        """The whole stored array (indicator input); reading past the cursor is look-ahead."""
        return self._values

    @values.setter
    def values(self, values: FloatArray) -> None:
        self._values = values
        self.changed()

    def changed(self) -> None:
        """The stored array was written in place (a live bar): forget the float copy, and
        the crossings computed from the values."""
        self._floats = None
        self._forget_crossings()
        readers = self._readers
        if readers:
            for reader in readers:
                reader._forget_crossings()
            readers.clear()

    def _forget_crossings(self) -> None:
        self._above = _NOBODY
        self._crossed = []

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
    # A strategy asks about the same pair on every bar: over a history that stays as it is
    # (a backtest), the answer for every bar is computed once, with the same comparisons,
    # when the pair is asked about on a second bar in a row (a series made on the fly for
    # one bar is compared bar by bar).
    if a._above is b:
        return a._crossed[a._cursor.i]
    if a._cursor.final and isinstance(b, Series) and _remember_crossings(a, b):
        return crossed_above(a, b)
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
    if isinstance(b, Series):  # `b` crossed above `a`: the same two comparisons
        if b._above is a:
            return b._crossed[b._cursor.i]
        if b._cursor.final and _remember_crossings(b, a):
            return crossed_below(a, b)
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


def _remember_crossings(a: Series, b: Series) -> bool:
    """Keep in `a` whether it crossed above `b` at each bar, as `crossed_above` compares
    (strictly, NaN never crossing), when `a` was compared with `b` on an earlier bar too,
    both are float arrays of one length on one cursor and `a` keeps no other pair's; False
    when not kept.

    The list has one entry per bar and a last one for the cursor before the first bar (-1),
    all False where `crossed_above` answers False without comparing (bar 0, before it)."""
    asked = a._asked
    if asked is None:
        asked = a._asked = {}
    first = asked.get(b)
    if first is None:
        if len(asked) >= _MAX_ASKED:  # series made on the fly, one per bar
            asked.clear()
        asked[b] = a._cursor.i
        return False
    if first == a._cursor.i:  # the same bar again: a pair is kept from its second bar
        return False
    av, bv = a._values, b._values
    if (
        a._above is not _NOBODY
        or b._cursor is not a._cursor
        or av.dtype != np.float64
        or bv.dtype != np.float64
        or av.shape != bv.shape
        or av.ndim != 1
    ):
        return False
    n = len(av)
    flags = np.zeros(n + 1, dtype=np.bool_)
    if n > 1:
        np.logical_and(av[:-1] < bv[:-1], av[1:] > bv[1:], out=flags[1:n])
    a._crossed = flags.tolist()
    a._above = b
    if b._readers is None:  # `b` changing makes the list stale (and `a` changing: `changed`)
        b._readers = []
    b._readers.append(a)
    return True


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
        # The latest bar time asked for, its bar (orders and fills of a bar ask for it
        # several times) and its microseconds since the epoch (the next one is made from it).
        self._time_at = -1
        self._time = _EPOCH
        self._time_us = 0

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
        # The time asked for before, plus the step from it: bars are evenly spaced or nearly,
        # so the few steps between them are made once (a timedelta costs most of a
        # conversion). The same exact microseconds as `_EPOCH + timedelta(0, 0, us)`.
        us = self._ns.item(i) // 1000
        step = us - self._time_us
        later = _STEPS.get(step)
        if later is None:
            later = timedelta(0, 0, step)  # positional: keywords cost a third more
            if len(_STEPS) >= _MAX_STEPS:
                _STEPS.clear()
            _STEPS[step] = later
        when = self._time = self._time + later
        self._time_at = i
        self._time_us = us
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
