from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from sigma.feeds.errors import DataError
from sigma.feeds.loaders import load_bars
from sigma.feeds.pg_source import parse_table
from sigma.feeds.synthetic import generate_bars

pytestmark = pytest.mark.pg


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(pg_url)
    yield eng
    eng.dispose()


def table_name(prefix: str = "bars") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def store(engine: sa.Engine, frame: pd.DataFrame, name: str, **kw: object) -> None:
    frame.to_sql(name, engine, index=False, **kw)  # type: ignore[arg-type]


def two_symbols() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    btc, _ = generate_bars(300, seed=1)
    eth, _ = generate_bars(300, seed=2, start_price=10.0)
    rows = pd.concat(
        [btc.reset_index().assign(symbol="BTC"), eth.reset_index().assign(symbol="ETH")]
    ).sample(frac=1.0, random_state=0)  # a table has no order: rows come back sorted by ts
    return btc, eth, rows


def test_round_trip_with_symbol_and_window(engine: sa.Engine, pg_url: str) -> None:
    btc, eth, rows = two_symbols()
    name = table_name()
    store(engine, rows, name)
    pd.testing.assert_frame_equal(load_bars(f"pg:{name}", symbol="BTC", database_url=pg_url), btc)
    window = load_bars(
        f"pg:{name}",
        symbol="ETH",
        start="2024-01-01 01:00",
        end="2024-01-01 02:00",
        database_url=pg_url,
    )
    pd.testing.assert_frame_equal(window, eth.loc["2024-01-01 01:00":"2024-01-01 02:00"])
    assert len(window) == 61
    with pytest.raises(DataError, match=rf"pg:{name}: holds several symbols"):
        load_bars(f"pg:{name}", database_url=pg_url)


def test_schema_table_naive_timestamps_no_symbol(engine: sa.Engine, pg_url: str) -> None:
    frame, _ = generate_bars(120, seed=3)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS market"))
    name = table_name("naive")
    naive = frame.reset_index()
    naive["ts"] = naive["ts"].dt.tz_localize(None)  # "timestamp without time zone" = UTC
    store(engine, naive, name, schema="market")
    got = load_bars(
        f"pg:market.{name}", symbol="ignored", start="2024-01-01 00:30", database_url=pg_url
    )
    pd.testing.assert_frame_equal(got, frame.loc["2024-01-01 00:30":])


def test_epoch_column_and_numeric_prices(engine: sa.Engine, pg_url: str) -> None:
    name = table_name("epoch")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f'CREATE TABLE "{name}" (ts bigint, open numeric(12,2), high numeric(12,2), '
                "low numeric(12,2), close numeric(12,2))"
            )
        )
        conn.execute(
            sa.text(
                f'INSERT INTO "{name}" VALUES (1704067200000, 1.10, 1.20, 1.00, 1.15), '
                "(1704067260000, 1.15, 1.25, 1.05, 1.20)"
            )
        )
    got = load_bars(f"pg:{name}", end="2024-01-01 00:00", database_url=pg_url)
    assert got.index.tolist() == [pd.Timestamp("2024-01-01", tz="UTC")]
    assert got["close"].tolist() == [1.15]
    assert got["volume"].dtype == np.float64


def test_bad_row_is_reported(engine: sa.Engine, pg_url: str) -> None:
    frame, _ = generate_bars(10, seed=4)
    frame.iloc[3, 1] = frame.iloc[3, 2] - 1.0  # high below low
    name = table_name("bad")
    store(engine, frame.reset_index(), name)
    with pytest.raises(DataError, match=rf"^pg:{name} row 4: high \(.*\) < low"):
        load_bars(f"pg:{name}", database_url=pg_url)


def test_duplicates_are_reported(engine: sa.Engine, pg_url: str) -> None:
    frame, _ = generate_bars(5, seed=4)
    name = table_name("dup")
    store(engine, pd.concat([frame, frame.iloc[[2]]]).reset_index(), name)
    with pytest.raises(DataError, match=rf"pg:{name} row 4: duplicate timestamp"):
        load_bars(f"pg:{name}", database_url=pg_url)


def test_empty_results(engine: sa.Engine, pg_url: str) -> None:
    _, _, rows = two_symbols()
    name = table_name()
    store(engine, rows, name)
    with pytest.raises(DataError, match=rf"^pg:{name}: no rows for symbol 'SOL' from 2024"):
        load_bars(f"pg:{name}", symbol="SOL", start="2024-01-01", database_url=pg_url)


def test_missing_table_and_columns(engine: sa.Engine, pg_url: str) -> None:
    with pytest.raises(DataError, match=r"pg:no_such_table: table does not exist"):
        load_bars("pg:no_such_table", database_url=pg_url)
    name = table_name("cols")
    store(engine, pd.DataFrame({"ts": [pd.Timestamp("2024-01-01", tz="UTC")], "open": [1.0]}), name)
    with pytest.raises(DataError, match="missing columns: high, low, close"):
        load_bars(f"pg:{name}", database_url=pg_url)


def test_database_url_is_required() -> None:
    with pytest.raises(DataError, match="pg:bars: database_url is required"):
        load_bars("pg:bars")


@pytest.mark.parametrize(
    "source",
    ['pg:bars"; DROP TABLE x; --', "pg:a.b.c", "pg:1bars", "pg:", "pg:bad-name"],
)
def test_unsafe_table_names_are_rejected(source: str) -> None:
    with pytest.raises(DataError, match=r"table name must be TABLE or SCHEMA\.TABLE"):
        load_bars(source, database_url="postgresql+psycopg://unused/none")


def test_parse_table() -> None:
    assert parse_table("pg:bars") == (None, "bars")
    assert parse_table("pg:Market.Bars_1") == ("Market", "Bars_1")
