"""A ``funding_rate`` column survives loading (CSV, Parquet, pg:TABLE), checking and
resampling; a blank rate is 0, a bad one a DataError naming its row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigma.feeds.errors import DataError
from sigma.feeds.frame import BAR_COLUMNS, FUNDING, check_shape
from sigma.feeds.loaders import load_bars
from sigma.feeds.resample import resample_bars
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.validation import validate_bars

HEADER = "ts,open,high,low,close,Funding_Rate\n"


def rows(*rates: str) -> str:
    """CSV rows a minute apart, one per rate (as written in the file)."""
    return "".join(
        f"2024-01-01T00:0{i}:00Z,100,101,99,100,{rate}\n" for i, rate in enumerate(rates)
    )


def test_csv_keeps_the_rates_and_reads_a_blank_as_zero(csv_file: Callable[..., str]) -> None:
    frame = load_bars(csv_file(HEADER + rows("0.0001", "", "-0.0003")))
    assert list(frame.columns) == [*BAR_COLUMNS, FUNDING]
    assert frame[FUNDING].tolist() == [0.0001, 0.0, -0.0003]


def test_bars_without_the_column_have_none(csv_file: Callable[..., str]) -> None:
    frame = load_bars(csv_file("ts,open,high,low,close\n2024-01-01,1,1,1,1\n"))
    assert list(frame.columns) == list(BAR_COLUMNS)


@pytest.mark.parametrize(
    ("rate", "reason"),
    [("abc", "funding_rate: cannot parse number 'abc'"), ("inf", "funding_rate is infinite")],
)
def test_a_bad_rate_is_named_by_line_and_column(
    csv_file: Callable[..., str], rate: str, reason: str
) -> None:
    path = csv_file(HEADER + rows("0.0001", "0", rate))
    with pytest.raises(DataError) as err:
        load_bars(path)
    assert str(err.value) == f"{path} line 4: {reason}"
    assert err.value.column == FUNDING


def test_parquet_keeps_the_rates(tmp_path: Path) -> None:
    bars, _ = generate_bars(5, seed=1)
    bars[FUNDING] = [0.001, np.nan, 0.0, -0.002, 0.0005]
    bars.to_parquet(tmp_path / "b.parquet")
    frame = load_bars(str(tmp_path / "b.parquet"))
    assert frame[FUNDING].tolist() == [0.001, 0.0, 0.0, -0.002, 0.0005]
    pd.testing.assert_frame_equal(frame[list(BAR_COLUMNS)], bars[list(BAR_COLUMNS)])


def test_resampling_sums_the_rates_of_a_bucket() -> None:
    bars, _ = generate_bars(6, seed=1)  # 1-minute bars
    bars[FUNDING] = [0.001, 0.0, 0.002, -0.004, 0.0, 0.0]
    out = resample_bars(bars, "3m")
    assert out[FUNDING].tolist() == pytest.approx([0.003, -0.004])
    assert list(out.columns) == [*BAR_COLUMNS, FUNDING]


def test_the_rate_column_comes_last_and_is_finite() -> None:
    bars, _ = generate_bars(3, seed=1)
    first = bars.assign(**{FUNDING: 0.0})[[FUNDING, *BAR_COLUMNS]]
    with pytest.raises(DataError, match=r"in the order open, high, low, close, volume\[, "):
        check_shape(first, "x")
    with pytest.raises(DataError, match="x row 2: funding_rate is NaN"):
        validate_bars(bars.assign(**{FUNDING: [0.0, np.nan, 0.0]}), "x")


@pytest.mark.pg
def test_a_pg_table_with_the_column_keeps_it(pg_url: str) -> None:
    bars, _ = generate_bars(4, seed=1)
    with_rates = bars.assign(**{FUNDING: [0.001, None, -0.002, 0.0]})
    plain, funded = f"bars_{uuid.uuid4().hex[:10]}", f"bars_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_url)
    try:
        bars.reset_index().to_sql(plain, engine, index=False)
        with_rates.reset_index().to_sql(funded, engine, index=False)
    finally:
        engine.dispose()
    assert FUNDING not in load_bars(f"pg:{plain}", database_url=pg_url).columns
    loaded = load_bars(f"pg:{funded}", database_url=pg_url)
    assert loaded[FUNDING].tolist() == [0.001, 0.0, -0.002, 0.0]
