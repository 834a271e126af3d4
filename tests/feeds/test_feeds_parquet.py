from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sigma.feeds.errors import DataError
from sigma.feeds.loaders import load_bars
from sigma.feeds.synthetic import generate_bars, write_parquet


def test_round_trip(tmp_path: Path) -> None:
    frame, _ = generate_bars(3_000, seed=11)
    for name in ("bars.parquet", "bars.pq"):
        path = write_parquet(frame, tmp_path / name)
        pd.testing.assert_frame_equal(load_bars(str(path)), frame, check_exact=True)


def test_timestamp_as_column_with_other_names(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "Timestamp": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:01"]),
            "Symbol": ["BTC", "BTC"],
            "Open": [1.0, 2.0],
            "High": [2, 3],
            "Low": [1, 1],
            "Close": [2.0, 2.5],
        }
    )
    path = tmp_path / "cols.parquet"
    raw.to_parquet(path, index=False)
    frame = load_bars(str(path), symbol="BTC")
    assert frame.index[1] == pd.Timestamp("2024-01-01 00:01", tz="UTC")
    assert frame["high"].dtype == np.float64
    assert frame["volume"].tolist() == [0.0, 0.0]


def test_named_non_datetime_index_is_used(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0]},
        index=pd.Index(["2024-01-01T00:00:00+02:00"], name="date"),
    )
    path = tmp_path / "idx.parquet"
    raw.to_parquet(path)
    assert load_bars(str(path)).index[0] == pd.Timestamp("2023-12-31 22:00", tz="UTC")


def test_bad_value_names_row(tmp_path: Path) -> None:
    frame, _ = generate_bars(10, seed=1)
    frame.iloc[6, 3] = np.nan
    path = write_parquet(frame, tmp_path / "nan.parquet")
    with pytest.raises(DataError) as info:
        load_bars(str(path))
    assert str(info.value) == f"{path} row 7: close is NaN"


def test_symbol_filter_keeps_original_row_numbers(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC"),
            "symbol": ["A", "B", "A", "B"],
            "open": [1.0, 1, 1, 1],
            "high": [1.0, 1, 1, 0.5],
            "low": [1.0, 1, 1, 1],
            "close": [1.0, 1, 1, 1],
        }
    )
    path = tmp_path / "s.parquet"
    raw.to_parquet(path)
    assert len(load_bars(str(path), symbol="A")) == 2
    with pytest.raises(DataError, match=r"s\.parquet row 4: high \(0\.5\) < low \(1\.0\)"):
        load_bars(str(path), symbol="B")


def test_truncated_file(tmp_path: Path) -> None:
    frame, _ = generate_bars(100, seed=1)
    path = write_parquet(frame, tmp_path / "cut.parquet")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cut\.parquet: not a readable Parquet file"):
        load_bars(str(path))


def test_garbage_empty_and_missing(tmp_path: Path) -> None:
    garbage = tmp_path / "g.pq"
    garbage.write_bytes(b"ts,open\n1,2\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_bars(str(garbage))
    empty = tmp_path / "e.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.parquet: file is empty$"):
        load_bars(str(empty))
    with pytest.raises(DataError, match=r"file does not exist"):
        load_bars(str(tmp_path / "none.parquet"))


def test_no_rows(tmp_path: Path) -> None:
    frame, _ = generate_bars(3, seed=1)
    path = write_parquet(frame.iloc[:0], tmp_path / "zero.parquet")
    with pytest.raises(DataError, match=r"zero\.parquet: no data rows$"):
        load_bars(str(path))


def test_writers_check_the_frame(tmp_path: Path) -> None:
    frame, _ = generate_bars(3, seed=1)
    with pytest.raises(DataError, match="missing columns: volume"):
        write_parquet(frame.drop(columns="volume"), tmp_path / "w.parquet")


def _table(**columns: object) -> pa.Table:
    base: dict[str, object] = {
        "ts": pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC"),
        "open": [1.0, 1.0, 1.0],
        "high": [1.0, 1.0, 1.0],
        "low": [1.0, 1.0, 1.0],
        "close": [1.0, 1.0, 1.0],
    }
    return pa.table({**base, **columns})


def test_binary_text_columns_are_decoded(tmp_path: Path) -> None:
    path = tmp_path / "bin.parquet"
    symbols = pa.array([b"BTC", b"ETH", b"BTC"], type=pa.binary())
    pq.write_table(_table(symbol=symbols, close=pa.array([b"1", b"1.0", b"1"])), path)
    frame = load_bars(str(path), symbol="BTC")
    assert frame["close"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("column", ["symbol", "close"])
def test_invalid_utf8_names_row_column_and_byte(tmp_path: Path, column: str) -> None:
    path = tmp_path / "enc.parquet"
    good = b"BTC" if column == "symbol" else b"1"
    values = pa.array([good, good + b"\xc3\x28", good], type=pa.binary())
    pq.write_table(_table(**{column: values}), path)
    with pytest.raises(DataError) as info:
        load_bars(str(path), symbol="BTC" if column == "symbol" else None)
    offset = len(good)
    assert str(info.value) == (
        f"{path} row 2: {column}: not valid UTF-8 text: byte 0xc3 at offset {offset}"
    )
    assert (info.value.row, info.value.column) == (2, column)


def test_boolean_prices_are_a_type_error(tmp_path: Path) -> None:
    path = tmp_path / "bool.parquet"
    pq.write_table(_table(close=[True, True, False]), path)
    with pytest.raises(DataError) as info:
        load_bars(str(path))
    assert str(info.value) == f"{path}: close holds booleans, not numbers"
    assert info.value.column == "close"
