"""Input limits (a file too big on disk, a compressed file that inflates too far: a "zip
bomb", a Parquet file whose metadata announces too much), values too long to quote, and
timestamps that are no date of their unit."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sigma.feeds.errors import MAX_REASON_CHARS, DataError
from sigma.feeds.limits import InputLimits, show_bytes
from sigma.feeds.loaders import load_bars, source_symbols
from sigma.feeds.synthetic import generate_bars, write_parquet

ROWS = "ts,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1.5,2,1,1.2\n"


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(ROWS)
    with pytest.raises(DataError) as info:
        load_bars(str(path), limits=InputLimits(max_file_bytes=10))
    assert str(info.value) == (
        f"{path}: the file holds {len(ROWS)} bytes, over the limit of 10 bytes "
        "(SIGMA_DATA_MAX_FILE_BYTES)"
    )
    assert len(load_bars(str(path), limits=InputLimits(max_file_bytes=len(ROWS)))) == 2


def test_a_gzip_bomb_stops_at_the_uncompressed_limit(tmp_path: Path) -> None:
    # 8 MiB of zeros compresses to a few KB; it is refused after the first 1 MiB chunk
    # passes the limit, without inflating the rest.
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress(ROWS.encode() + b"0" * (8 * 1024**2)))
    assert path.stat().st_size < 100_000
    limits = InputLimits(max_uncompressed_bytes=512 * 1024)
    with pytest.raises(DataError) as info:
        source_symbols(str(path), limits=limits)
    assert str(info.value) == (
        f"{path}: decompressed, the file holds more than 512.0 KiB "
        "(the limit, SIGMA_DATA_MAX_UNCOMPRESSED_BYTES)"
    )


def test_a_gzip_file_within_the_limits_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv.gz"
    path.write_bytes(gzip.compress(ROWS.encode()))
    assert len(load_bars(str(path), limits=InputLimits(max_uncompressed_bytes=len(ROWS)))) == 2


def test_parquet_limits_use_the_size_on_disk_and_the_announced_uncompressed_size(
    tmp_path: Path,
) -> None:
    frame, _ = generate_bars(2000, seed=1)
    path = str(write_parquet(frame, tmp_path / "bars.parquet"))
    with pytest.raises(DataError, match="the file holds .* over the limit of 100 bytes"):
        load_bars(path, limits=InputLimits(max_file_bytes=100))
    with pytest.raises(DataError, match="decompressed, the file holds more than 1.0 KiB"):
        load_bars(path, limits=InputLimits(max_uncompressed_bytes=1024))
    assert len(load_bars(path)) == 2000


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        InputLimits(max_file_bytes=0)


@pytest.mark.parametrize(
    ("count", "shown"),
    [(512, "512 bytes"), (1536, "1.5 KiB"), (3 * 1024**2, "3.0 MiB"), (2 * 1024**3, "2.0 GiB")],
)
def test_show_bytes(count: int, shown: str) -> None:
    assert show_bytes(count) == shown


def test_a_huge_field_is_cut_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"ts,open,high,low,close\n{'x' * 5_000_000},1,2,0.5,1.5\n")
    with pytest.raises(DataError) as info:
        load_bars(str(path))
    assert info.value.line == 2
    assert len(info.value.reason) < MAX_REASON_CHARS + 50
    assert info.value.reason.endswith("more characters)")
    assert "cannot parse timestamp 'xxx" in info.value.reason


def test_a_typed_column_of_seconds_stored_as_milliseconds_is_refused(tmp_path: Path) -> None:
    seconds = pa.array([1_704_067_200, 1_704_070_800], pa.timestamp("ms"))
    table = pa.table({"ts": seconds, "open": [1.0, 1.0], "high": [1.0, 1.0]})
    table = table.append_column("low", pa.array([1.0, 1.0])).append_column(
        "close", pa.array([1.0, 1.0])
    )
    path = tmp_path / "ms.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"ts values all fall between 1970 and 1973"):
        load_bars(str(path))


def test_the_settings_default_to_the_loaders_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from sigma.config import Settings
    from sigma.feeds.limits import limits_of

    assert limits_of(Settings()) == InputLimits()
    monkeypatch.setenv("SIGMA_DATA_MAX_UNCOMPRESSED_BYTES", "1000")
    assert limits_of(Settings()).max_uncompressed_bytes == 1000


def test_an_all_empty_epoch_column_is_reported_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "empty_ts.csv"
    path.write_text("ts,open,high,low,close\n,1,2,0.5,1.5\n")
    with pytest.raises(DataError, match=r"line 2: ts is missing"):
        load_bars(str(path))


def test_an_all_null_typed_column_is_reported_as_missing(tmp_path: Path) -> None:
    table = pa.table(
        {
            "ts": pa.array([None], pa.timestamp("ms")),
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
        }
    )
    path = tmp_path / "null_ts.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match=r"row 1: ts is missing"):
        load_bars(str(path))
