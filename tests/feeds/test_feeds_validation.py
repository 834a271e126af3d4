from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.frame import BAR_COLUMNS, make_bar_frame
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.validation import validate_bars


def bars(n: int = 5) -> pd.DataFrame:
    frame, _ = generate_bars(n, seed=3)
    return frame


def broken(column: str, row: int, value: float) -> pd.DataFrame:
    frame = bars()
    frame.iloc[row, frame.columns.get_loc(column)] = value
    return frame


def test_good_frame_passes() -> None:
    validate_bars(bars(), "mem")
    validate_bars(bars().iloc[:0], "mem")


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("close", np.nan, "close is NaN"),
        ("volume", np.inf, "volume is infinite"),
        ("open", 0.0, "open is negative or zero (0.0)"),
        ("low", -1.0, "low is negative or zero (-1.0)"),
        ("volume", -5.0, "volume is negative (-5.0)"),
    ],
)
def test_bad_values_name_row_and_column(column: str, value: float, reason: str) -> None:
    with pytest.raises(DataError) as info:
        validate_bars(broken(column, 2, value), "mem")
    assert str(info.value) == f"mem row 3: {reason}"
    assert info.value.column == column
    assert info.value.row == 3


def test_high_below_low() -> None:
    frame = bars()
    frame.iloc[1, :4] = [10.0, 9.5, 10.0, 10.0]
    with pytest.raises(DataError, match=r"^mem row 2: high \(9\.5\) < low \(10\.0\)$"):
        validate_bars(frame, "mem")


def test_high_below_open_or_close() -> None:
    frame = bars()
    frame.iloc[4, :4] = [10.0, 10.5, 9.0, 11.0]
    with pytest.raises(DataError, match=r"row 5: high \(10\.5\) < max\(open, close\) \(11\.0\)"):
        validate_bars(frame, "mem")


def test_low_above_open_or_close() -> None:
    frame = bars()
    frame.iloc[0, :4] = [10.0, 12.0, 10.5, 11.0]
    with pytest.raises(DataError, match=r"row 1: low \(10\.5\) > min\(open, close\) \(10\.0\)"):
        validate_bars(frame, "mem")


def test_unsorted_and_duplicate_timestamps() -> None:
    frame = bars()
    swapped = frame.index[[0, 2, 1, 3, 4]]
    with pytest.raises(DataError) as info:
        validate_bars(frame.set_axis(swapped), "mem")
    assert str(info.value) == (
        "mem row 3: timestamp 2024-01-01 00:01:00+00:00 is not after the previous row (unsorted)"
    )
    assert info.value.column == "ts"
    doubled = frame.index[[0, 1, 1, 3, 4]]
    with pytest.raises(DataError) as info:
        validate_bars(frame.set_axis(doubled), "mem")
    assert (
        str(info.value)
        == "mem row 3: duplicate timestamp 2024-01-01 00:01:00+00:00 (same as row 2)"
    )


def test_uses_source_line_numbers() -> None:
    rows = RowNumbers("line", np.array([2, 4, 5, 9, 10], dtype=np.int64))
    with pytest.raises(DataError, match=r"^f\.csv line 9: close is NaN$"):
        validate_bars(broken("close", 3, np.nan), "f.csv", rows=rows)


def test_missing_timestamp() -> None:
    frame = bars()
    index = pd.DatetimeIndex([*frame.index[:4], pd.NaT], name="ts")
    with pytest.raises(DataError, match=r"row 5: ts is missing"):
        validate_bars(frame.set_axis(index), "mem")


def test_structure_is_checked() -> None:
    frame = bars()
    with pytest.raises(DataError, match=r"^mem: missing columns: close, volume$"):
        validate_bars(frame.drop(columns=["close", "volume"]), "mem")
    with pytest.raises(DataError, match="unexpected columns: vwap"):
        validate_bars(frame.assign(vwap=1.0), "mem")
    with pytest.raises(DataError, match="must be in the order"):
        validate_bars(frame[list(reversed(BAR_COLUMNS))], "mem")
    with pytest.raises(DataError, match="volume has dtype int64"):
        validate_bars(frame.astype({"volume": "int64"}), "mem")
    with pytest.raises(DataError, match="must be a DatetimeIndex"):
        validate_bars(frame.reset_index(drop=True), "mem")
    with pytest.raises(DataError, match="must be tz-aware UTC"):
        validate_bars(frame.tz_convert("Europe/Paris"), "mem")
    with pytest.raises(DataError, match="must be named 'ts'"):
        validate_bars(frame.rename_axis("time"), "mem")


def test_make_bar_frame_takes_naive_as_utc() -> None:
    frame = make_bar_frame(pd.DatetimeIndex(["2024-01-01"]), [1.0], [1.0], [1.0], [1.0], [0])
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index.freq is None
    assert list(frame.dtypes) == [np.float64] * 5


def test_million_rows_is_fast() -> None:
    frame, _ = generate_bars(1_000_000, seed=1)
    began = time.perf_counter()
    validate_bars(frame, "mem")
    assert time.perf_counter() - began < 0.5
