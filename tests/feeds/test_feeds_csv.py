from __future__ import annotations

import gzip
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sigma.feeds.errors import DataError, RowNumbers
from sigma.feeds.loaders import load_bars
from sigma.feeds.normalise import to_bar_frame
from sigma.feeds.synthetic import generate_bars, write_csv, write_parquet
from sigma.feeds.timestamps import parse_timestamps

WriteCsv = Callable[..., str]
HEADER = "ts,open,high,low,close,volume\n"
GOOD_ROWS = [
    "2024-01-01 00:00:00,10.0,10.5,9.5,10.2,100\n",
    "2024-01-01 00:01:00,10.2,10.6,10.1,10.4,50\n",
    "2024-01-01 00:02:00,10.4,10.4,10.0,10.1,0\n",
]


def rows_with(bad: str, at: int = 5, total: int = 8) -> str:
    """A CSV whose data row number ``at`` (1-based, so file line at+1) is ``bad``."""
    lines = [f"2024-01-01 00:{i:02d}:00,10.0,10.5,9.5,10.2,100\n" for i in range(total)]
    lines[at - 1] = bad
    return HEADER + "".join(lines)


def test_round_trip(tmp_path: Path) -> None:
    frame, _ = generate_bars(2_000, seed=7)
    for name in ("bars.csv", "bars.csv.gz"):
        path = write_csv(frame, tmp_path / name)
        pd.testing.assert_frame_equal(load_bars(str(path)), frame)


def test_aliases_case_and_ignored_columns(csv_file: WriteCsv) -> None:
    path = csv_file(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,10,11,9,10.5,10.4,1000\n"
        "2024-01-03,10.5,12,10,11,10.9,2000\n"
    )
    frame = load_bars(path)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "ts"
    assert str(frame.index.dtype) == "datetime64[ns, UTC]"
    assert frame.index[0] == pd.Timestamp("2024-01-02", tz="UTC")
    assert frame["close"].tolist() == [10.5, 11.0]


@pytest.mark.parametrize("scale", [1, 1000])
def test_epoch_seconds_and_milliseconds(csv_file: WriteCsv, scale: int) -> None:
    first = 1_704_067_200  # 2024-01-01T00:00:00Z
    path = csv_file(
        "timestamp,open,high,low,close\n"
        f"{first * scale},1,2,0.5,1.5\n"
        f"{(first + 60) * scale},1.5,2,1,1.2\n"
    )
    frame = load_bars(path)
    assert frame.index[1] == pd.Timestamp("2024-01-01 00:01", tz="UTC")
    assert frame["volume"].tolist() == [0.0, 0.0]


def test_offsets_are_converted_and_naive_is_utc(csv_file: WriteCsv) -> None:
    path = csv_file(
        "datetime,open,high,low,close,volume\n"
        "2024-01-01T01:00:00+01:00,1,1,1,1,1\n"
        "2024-01-01T00:30:00,1,1,1,1,1\n"
        "2024-01-01T01:00:00Z,1,1,1,1,1\n"
    )
    frame = load_bars(path)
    expected = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:30", "2024-01-01 01:00"])
    assert list(frame.index) == list(expected.tz_localize("UTC"))


def test_separate_date_and_time_columns(csv_file: WriteCsv) -> None:
    path = csv_file(
        "date,time,open,high,low,close\n2024-01-01,09:30,1,1,1,1\n2024-01-01,09:31,1,1,1,1\n"
    )
    assert load_bars(path).index[1] == pd.Timestamp("2024-01-01 09:31", tz="UTC")


def test_symbol_column_is_filtered(csv_file: WriteCsv) -> None:
    path = csv_file(
        "symbol,ts,open,high,low,close,volume\n"
        "BTC,2024-01-01 00:00,10,11,9,10,1\n"
        "ETH,2024-01-01 00:00,1,1,1,1,1\n"
        "BTC,2024-01-01 00:01,10,12,10,11,1\n"
        "ETH,2024-01-01 00:01,1,1,abc,1,1\n"
    )
    btc = load_bars(path, symbol="BTC")
    assert btc["close"].tolist() == [10.0, 11.0]
    with pytest.raises(DataError, match=r"line 5: low: cannot parse number 'abc'"):
        load_bars(path, symbol="ETH")
    with pytest.raises(DataError, match=r"holds several symbols \(BTC, ETH\); pass symbol="):
        load_bars(path)
    with pytest.raises(DataError, match=r"no rows for symbol 'SOL' \(found: BTC, ETH\)"):
        load_bars(path, symbol="SOL")


def test_symbol_is_ignored_without_a_symbol_column(csv_file: WriteCsv) -> None:
    path = csv_file(HEADER + "".join(GOOD_ROWS))
    assert len(load_bars(path, symbol="ANY")) == 3


def test_single_symbol_column_needs_no_argument(csv_file: WriteCsv) -> None:
    path = csv_file("symbol,ts,open,high,low,close\nBTC,2024-01-01,1,1,1,1\n")
    assert len(load_bars(path)) == 1


def test_start_end_are_inclusive(csv_file: WriteCsv) -> None:
    path = csv_file(HEADER + "".join(GOOD_ROWS))
    frame = load_bars(path, start="2024-01-01 00:01", end=datetime(2024, 1, 1, 0, 2))
    assert len(frame) == 2
    aware = datetime(2024, 1, 1, 0, 1, tzinfo=UTC)
    assert len(load_bars(path, end=aware)) == 2
    assert len(load_bars(path, start=pd.Timestamp("2023-12-31"))) == 3


def test_empty_window_is_an_error(csv_file: WriteCsv) -> None:
    path = csv_file(HEADER + "".join(GOOD_ROWS))
    with pytest.raises(DataError, match=r"x\.csv: no rows from 2025-01-01 00:00:00\+00:00$"):
        load_bars(path, start="2025-01-01")


def test_empty_window_before_the_data(csv_file: WriteCsv) -> None:
    path = csv_file(HEADER + "".join(GOOD_ROWS))
    with pytest.raises(DataError, match=r"x\.csv: no rows up to 2023-01-01 00:00:00\+00:00$"):
        load_bars(path, end="2023-01-01")


def test_to_bar_frame_rejects_an_empty_table() -> None:
    raw = pd.DataFrame(columns=["ts", "open", "high", "low", "close"])
    with pytest.raises(DataError, match=r"^mem: no data rows$"):
        to_bar_frame(raw, "mem", RowNumbers.rows(0))


def test_bad_bound_is_rejected(csv_file: WriteCsv) -> None:
    path = csv_file(HEADER + "".join(GOOD_ROWS))
    with pytest.raises(ValueError, match="cannot parse start 'soon'"):
        load_bars(path, start="soon")
    with pytest.raises(ValueError, match="end must not be empty"):
        load_bars(path, end=pd.NaT)


def test_validation_errors_outside_window_are_not_reported(csv_file: WriteCsv) -> None:
    path = csv_file(rows_with("2024-01-01 00:04:00,10.0,9.5,10.0,10.0,1\n", at=5))
    assert len(load_bars(path, end="2024-01-01 00:03")) == 4


def test_timeframe_resamples(csv_file: WriteCsv) -> None:
    path = csv_file(HEADER + "".join(GOOD_ROWS))
    frame = load_bars(path, timeframe="1h")
    assert frame.iloc[0].tolist() == [10.0, 10.6, 9.5, 10.1, 150.0]


def test_high_below_low_names_line(csv_file: WriteCsv) -> None:
    path = csv_file(rows_with("2024-01-01 00:05:00,10.0,9.5,10.0,10.0,1\n", at=6))
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path} line 7: high (9.5) < low (10.0)"
    assert (info.value.line, info.value.column) == (7, "high")


def test_unsorted_names_line(csv_file: WriteCsv) -> None:
    lines = [f"2024-01-01 00:{i:02d}:00,10.0,10.5,9.5,10.2,100\n" for i in range(12)]
    lines[10] = "2024-01-01 00:05:00,10.0,10.5,9.5,10.2,100\n"
    path = csv_file(HEADER + "".join(lines))
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path} line 12: timestamp 2024-01-01 00:05:00+00:00 is not after the previous row "
        "(unsorted)"
    )


def test_duplicate_names_both_lines(csv_file: WriteCsv) -> None:
    path = csv_file(rows_with("2024-01-01 00:03:00,10.0,10.5,9.5,10.2,100\n", at=5))
    with pytest.raises(DataError, match=r"line 6: duplicate timestamp .*00:03:00.* line 5\)"):
        load_bars(path)


@pytest.mark.parametrize(
    ("bad", "reason", "column"),
    [
        ("2024-01-01 00:04:00,10.0,10.5,9.5,,100\n", "close is NaN", "close"),
        ("2024-01-01 00:04:00,-1,10.5,9.5,10.2,100\n", "open is negative or zero (-1.0)", "open"),
        ("2024-01-01 00:04:00,10,10.5,9.5,10.2,-3\n", "volume is negative (-3.0)", "volume"),
        ("abc,10,10.5,9.5,10.2,1\n", "cannot parse timestamp 'abc'", "ts"),
        (",10,10.5,9.5,10.2,1\n", "ts is missing", "ts"),
        ("2024-01-01 00:04:00,1O.0,10.5,9.5,10.2,1\n", "open: cannot parse number '1O.0'", "open"),
    ],
)
def test_bad_value_names_line_and_column(
    csv_file: WriteCsv, bad: str, reason: str, column: str
) -> None:
    path = csv_file(rows_with(bad, at=5))
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path} line 6: {reason}"
    assert info.value.column == column


def test_blank_lines_keep_line_numbers(csv_file: WriteCsv) -> None:
    path = csv_file(
        HEADER + GOOD_ROWS[0] + "\n\n" + GOOD_ROWS[1] + "2024-01-01 00:02:00,10,11,9,,1\n\n"
    )
    with pytest.raises(DataError, match=r"line 6: close is NaN"):
        load_bars(path)


def test_missing_columns(csv_file: WriteCsv) -> None:
    path = csv_file("ts,open,high,low\n2024-01-01,1,1,1\n")
    with pytest.raises(DataError, match=r"x\.csv: missing columns: close$"):
        load_bars(path)
    path = csv_file("when,open,high,low,close\n2024-01-01,1,1,1,1\n")
    with pytest.raises(DataError, match=r"missing columns: ts \(accepted names for ts: ts, "):
        load_bars(path)


@pytest.mark.parametrize(("separator", "name"), [(";", "';'"), ("\t", "tabs"), ("|", "'|'")])
def test_a_file_separated_by_other_than_commas_is_named(
    csv_file: WriteCsv, separator: str, name: str
) -> None:
    # A European spreadsheet's export: semicolons between fields, commas as decimal points.
    text = (HEADER + "2024-01-01 00:00:00,10.0,10.5,9.5,10.2,100\n").replace(",", separator)
    path = csv_file(text.replace(".", ","))
    with pytest.raises(DataError) as info:
        load_bars(path)
    header = HEADER.strip().replace(",", separator)
    assert str(info.value) == (
        f"{path}: the header {header!r} is one column, its fields separated by {name}: SIGMA "
        "reads comma-separated CSV with '.' as the decimal point "
        "(header e.g. ts,open,high,low,close,volume)"
    )


def test_a_file_without_a_header_says_how_to_add_one(csv_file: WriteCsv) -> None:
    # Binance's kline files (data.binance.vision) have no header line.
    kline = "1704067200000,42000.5,42100,41950.2,42050,12.5,1704067259999,525000,40,6,252000,0\n"
    path = csv_file(kline + kline.replace("1704067200000", "1704067260000", 1))
    expected = (
        f"{path}: the first line holds data (1704067200000, 42000.5, 42100, ...), not column "
        "names: add a header line, e.g. ts,open,high,low,close,volume "
        "(Binance klines: open_time,open,high,low,close,volume,close_time,...)"
    )
    with pytest.raises(DataError, match=f"^{re.escape(expected)}$"):
        load_bars(path)


def test_binance_open_time_is_the_timestamp(csv_file: WriteCsv) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count\n"
    start = 1_704_067_200_000  # 2024-01-01T00:00Z in milliseconds, as Binance writes it
    klines = [f"{start + 60_000 * i},42000,42100,41950,{42050 + i},12.5,0,0,0\n" for i in (0, 1)]
    frame = load_bars(csv_file(header + "".join(klines)))
    assert frame.index[-1] == pd.Timestamp("2024-01-01T00:01Z")
    assert frame["close"].tolist() == [42050.0, 42051.0]


def test_ambiguous_columns(csv_file: WriteCsv) -> None:
    path = csv_file("ts,open,high,low,close,Close\n2024-01-01,1,1,1,1,1\n")
    with pytest.raises(DataError, match="columns 'close' and 'Close' are ambiguous"):
        load_bars(path)


def test_boolean_timestamps_are_rejected(csv_file: WriteCsv) -> None:
    path = csv_file("ts,open,high,low,close\nTrue,1,1,1,1\n")
    with pytest.raises(DataError, match="ts holds booleans"):
        load_bars(path)


def test_boolean_prices_are_rejected(csv_file: WriteCsv) -> None:
    # pandas reads a True/False column as booleans, which would otherwise pass as 1.0/0.0.
    path = csv_file("ts,open,high,low,close\n2024-01-01,1,1,1,True\n2024-01-02,1,1,1,False\n")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path}: close holds booleans, not numbers"


@pytest.mark.parametrize("scale", [1, 10**3, 10**6, 10**9])
def test_epoch_units_are_told_apart_by_magnitude(csv_file: WriteCsv, scale: int) -> None:
    first = 1_704_067_200
    path = csv_file(
        f"ts,open,high,low,close\n{first * scale},1,1,1,1\n{(first + 3600) * scale},1,1,1,1\n"
    )
    assert load_bars(path).index[1] == pd.Timestamp("2024-01-01 01:00", tz="UTC")


@pytest.mark.parametrize(
    ("stamps", "line", "reason"),
    [
        # 1e30 is no unit's date; 5e9 seconds is 2128, 5e9 milliseconds 1970-02-27.
        (["1e30"], 2, "epoch ts 1e+30 is out of range: expected seconds, milliseconds"),
        (["5000000000"], 2, "epoch ts 5000000000 is out of range"),
        (["60", "120"], 3, "epoch ts 120 is out of range"),
        # Seconds among milliseconds would land in January 1970.
        (["1704067200000", "1704070800"], 3, "epoch ts 1704070800 is not in milliseconds"),
        (["-1704067200"], 2, "is not in seconds like the rest of the column"),
    ],
)
def test_epoch_numbers_outside_every_unit_are_refused(
    csv_file: WriteCsv, stamps: list[str], line: int, reason: str
) -> None:
    path = csv_file("ts,open,high,low,close\n" + "".join(f"{s},1,1,1,1\n" for s in stamps))
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert info.value.line == line
    assert reason in str(info.value)


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes((HEADER + GOOD_ROWS[0]).encode("utf-16"))
    with pytest.raises(DataError, match=r"u16\.csv: file is UTF-16 \(little-endian\) encoded"):
        load_bars(str(path))


def test_utf16_without_bom_is_caught_by_nul_bytes(csv_file: WriteCsv) -> None:
    path = csv_file((HEADER + GOOD_ROWS[0]).encode("utf-16-le"))
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path} line 1: file is not valid UTF-8 text: NUL byte at offset 1 (binary data?)"
    )


def test_invalid_utf8_names_offset_and_line(csv_file: WriteCsv) -> None:
    data = (HEADER + GOOD_ROWS[0]).encode() + b"2024-01-01 00:01:00,\xff\xfe,1,1,1,1\n"
    path = csv_file(data)
    offset = len((HEADER + GOOD_ROWS[0]).encode()) + len("2024-01-01 00:01:00,")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path} line 3: file is not valid UTF-8 text: byte 0xff at offset {offset}"
    )


def test_binary_files_named_csv_say_what_they_are(tmp_path: Path) -> None:
    frame, _ = generate_bars(20, seed=1)
    write_parquet(frame, tmp_path / "bars.parquet")
    (tmp_path / "parquet.csv").write_bytes((tmp_path / "bars.parquet").read_bytes())
    (tmp_path / "gzip.csv").write_bytes(gzip.compress((HEADER + GOOD_ROWS[0]).encode()))
    with zipfile.ZipFile(tmp_path / "excel.csv", "w") as workbook:
        workbook.writestr("xl/workbook.xml", "<workbook/>" * 50)
    expected = {
        "parquet.csv": "a Parquet file, not CSV text: name it .parquet",
        "gzip.csv": "gzip-compressed: name it .csv.gz",
        "excel.csv": "a ZIP archive (an Excel workbook?), not CSV text: save it as CSV",
    }
    for name, what in expected.items():
        with pytest.raises(DataError) as info:
            load_bars(str(tmp_path / name))
        assert str(info.value) == f"{tmp_path / name}: file is {what}"


@pytest.mark.parametrize("year", ["3000", "1500"])
def test_a_timestamp_pandas_cannot_hold_names_its_line(csv_file: WriteCsv, year: str) -> None:
    path = csv_file(HEADER + GOOD_ROWS[0] + f"{year}-01-01 00:01:00,10.2,10.6,10.1,10.4,50\n")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path} line 3: timestamp {year}-01-01 00:01:00 is out of range: 1677-09-21 to 2262-04-11"
    )


def test_utf8_bom_is_accepted(csv_file: WriteCsv) -> None:
    path = csv_file(("\ufeff" + HEADER + GOOD_ROWS[0]).encode())
    assert len(load_bars(path)) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "file is empty"), ("\n  \n", "file is empty"), (HEADER, "no data rows (only a header)")],
)
def test_empty_files(csv_file: WriteCsv, content: str, reason: str) -> None:
    path = csv_file(content)
    with pytest.raises(DataError, match=rf"^{path}: {reason.replace('(', '.').replace(')', '.')}$"):
        load_bars(path)


def test_malformed_row_names_line(csv_file: WriteCsv) -> None:
    path = csv_file(rows_with("2024-01-01 00:04:00,1,1,1,1,1,1,1\n", at=3))
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert info.value.line == 4
    assert "malformed CSV: Error tokenizing data" in str(info.value)


def test_missing_and_odd_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: file does not exist"):
        load_bars(str(tmp_path / "nope.csv"))
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        load_bars(str(folder))
    with pytest.raises(DataError, match=r"x\.txt: unsupported source: expected a \.csv"):
        load_bars(str(tmp_path / "x.txt"))
    (tmp_path / "history").mkdir()
    with pytest.raises(DataError, match=r"history: is a directory, not a file: name a \.csv"):
        load_bars(str(tmp_path / "history"))


@pytest.mark.parametrize("content", [b"not gzip at all", None])
def test_bad_gzip(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "x.csv.gz"
    if content is None:  # a real gzip stream cut in half
        content = gzip.compress((HEADER + "".join(GOOD_ROWS) * 50).encode())[:60]
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"x\.csv\.gz: not a valid gzip file"):
        load_bars(str(path))


def test_sub_second_timestamps_survive(tmp_path: Path) -> None:
    frame, _ = generate_bars(5, seed=2, freq="250ms")
    path = write_csv(frame, tmp_path / "ms.csv")
    assert "T00:00:00.250000000Z" in path.read_text()
    pd.testing.assert_frame_equal(load_bars(str(path)), frame)


def test_float_precision_survives(tmp_path: Path) -> None:
    frame, _ = generate_bars(500, seed=2)
    frame["volume"] = np.linspace(0.1, 1e9, 500)
    path = write_csv(frame, tmp_path / "p.csv")
    pd.testing.assert_frame_equal(load_bars(str(path)), frame, check_exact=True)


def test_text_times_are_epochs_only_when_all_read_as_numbers() -> None:
    """Only the first value is tried before converting all: a column that starts with a
    number and goes on with ISO text is still read as text (and its number refused)."""
    mixed = pd.Series(["1704067200", "2024-01-01T00:01:00"], dtype=object)
    with pytest.raises(DataError, match="row 1.*cannot parse timestamp '1704067200'"):
        parse_timestamps(mixed, "mixed.csv", RowNumbers.rows(2))
    epochs = parse_timestamps(
        pd.Series(["1704067200", "1704067260"], dtype=object), "e.csv", RowNumbers.rows(2)
    )
    assert list(epochs) == [
        pd.Timestamp("2024-01-01T00:00", tz="UTC"),
        epochs[0] + pd.Timedelta("1min"),
    ]
    with pytest.raises(DataError, match="row 1.*missing"):
        parse_timestamps(pd.Series([None, None], dtype=object), "gone.csv", RowNumbers.rows(2))


def test_iso_text_parsed_while_read_or_after_gives_the_same_bars(csv_file: WriteCsv) -> None:
    """ISO text from 1973 on is parsed by pandas as it reads the file; text of 1970-1972 and
    text pandas cannot parse in one go (a bad value) take the general path: the same rules
    either way, 1971 dates are dates (not epoch numbers of a too-fine unit)."""
    late = load_bars(csv_file(HEADER + "".join(GOOD_ROWS)))
    early = load_bars(csv_file(HEADER + "".join(GOOD_ROWS).replace("2024-", "1971-"), "e.csv"))
    assert list(early.index.year) == [1971] * 3
    assert list(early.index + pd.DateOffset(years=53)) == list(late.index)
    pd.testing.assert_frame_equal(early.reset_index(drop=True), late.reset_index(drop=True))
    path = csv_file(rows_with("2024-13-01 00:04:00,10.0,10.5,9.5,10.2,100\n"), "bad.csv")
    with pytest.raises(DataError, match=r"line 6.*cannot parse timestamp '2024-13-01 00:04:00'"):
        load_bars(path)
