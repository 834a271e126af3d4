"""A backtest stored in a SQLite file with `sqlite3` alone (`sigma.store.backtest_file`) is
stored as SQLAlchemy stores it; anything that file path cannot take goes through SQLAlchemy."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from sigma.research.backtest import run_backtest
from sigma.store import get_backtest, save_backtest
from sigma.store.backtest_file import (
    SUMMARY_TABLE,
    TRADES_TABLE,
    save_backtest_file,
    sqlite_path,
    store_backtest,
)
from sigma.store.db import init_db, session_factory
from sigma.store.models import BtSummary, BtTrade
from sigma.store.sqlite_file import DatabaseFileError
from sigma.strategies.builtin import SmaCross
from tests.store.test_store_backtests import _bars, _result


def _rows(path: Path, table: str, *, without: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every row of `table` as stored (SQLite's own values, no type processing), in id order,
    without the columns `without`."""
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    return [{k: row[k] for k in row.keys() if k not in without} for row in rows]  # noqa: SIM118


def _migrated(path: Path) -> str:
    url = f"sqlite:///{path}"
    init_db(url).dispose()
    return url


def test_the_tables_named_are_the_models() -> None:
    assert (BtSummary.__tablename__, BtTrade.__tablename__) == (SUMMARY_TABLE, TRADES_TABLE)


@pytest.mark.parametrize("real_run", [False, True])
def test_sqlite3_stores_the_rows_sqlalchemy_stores(tmp_path: Path, real_run: bool) -> None:
    if real_run:
        result, _ = run_backtest(SmaCross(fast=5, slow=20), _bars(), symbol="W")
        assert len(result.trades) > 3
    else:
        result = _result(cagr_pct=None, duration="0 days 04:00:00")
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    _migrated(ours)
    engine = init_db(_migrated(theirs))
    try:
        with session_factory(engine)() as session:
            save_backtest(session, result, report_path="r/report.html", run_id="same")
            session.commit()
    finally:
        engine.dispose()

    assert save_backtest_file(ours, result, report_path="r/report.html", run_id="same") == 1
    summary = _rows(ours, SUMMARY_TABLE, without=("created_at",))
    assert summary == _rows(theirs, SUMMARY_TABLE, without=("created_at",))
    assert _rows(ours, TRADES_TABLE, without=()) == _rows(theirs, TRADES_TABLE, without=())
    # The time the row was made, in the text SQLAlchemy writes and reads back.
    with sqlite3.connect(ours) as conn:
        (created,) = conn.execute(f"SELECT created_at FROM {SUMMARY_TABLE}").fetchone()
    assert len(created) == len("2024-01-01 00:00:00.000000")

    engine = init_db(f"sqlite:///{ours}")
    try:
        with session_factory(engine)() as session:
            stored = get_backtest(session, 1)
    finally:
        engine.dispose()
    assert stored is not None
    assert stored.trades == result.trades
    assert stored.record.final_equity == result.final_equity
    assert stored.record.created_at.tzinfo is not None


def test_a_file_not_at_head_is_left_to_sqlalchemy(tmp_path: Path) -> None:
    blank = tmp_path / "blank.db"
    sqlite3.connect(blank).close()  # a file, never migrated
    assert save_backtest_file(blank, _result()) is None
    with sqlite3.connect(blank) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []

    older = tmp_path / "older.db"
    _migrated(older)
    with sqlite3.connect(older) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'older'")
    assert save_backtest_file(older, _result()) is None
    assert _rows(older, SUMMARY_TABLE, without=()) == []


def test_store_backtest_takes_any_database(tmp_path: Path, db_url: str, engine: Engine) -> None:
    # A file that does not exist yet: made and migrated through SQLAlchemy.
    fresh = tmp_path / "new" / "sigma.db"
    assert store_backtest(f"sqlite:///{fresh}", _result(), report_path=None) == 1
    # At head now: through sqlite3.
    assert store_backtest(f"sqlite:///{fresh}", _result(), report_path="x") == 2
    assert [r["report_path"] for r in _rows(fresh, SUMMARY_TABLE, without=())] == [None, "x"]
    # The test database (a SQLite file at head, or PostgreSQL) through its URL.
    assert store_backtest(db_url, _result("elsewhere"), report_path=None) > 0
    with session_factory(engine)() as session:
        assert session.scalar(select(BtSummary.strategy)) == "elsewhere"


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("sqlite:///{dir}/a.db", True),
        ("sqlite+pysqlite:///{dir}/a.db", True),
        ("sqlite:///{dir}/missing.db", False),
        ("sqlite:///{dir}/a.db?timeout=3", False),
        ("sqlite:///{dir}/a%2Eb.db", False),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql://u@localhost/sigma", False),
    ],
)
def test_only_a_plain_sqlite_file_url_is_a_path(tmp_path: Path, url: str, plain: bool) -> None:
    (tmp_path / "a.db").touch()
    path = sqlite_path(url.format(dir=tmp_path))
    assert path == (tmp_path / "a.db" if plain else None)


# A fresh interpreter: this one has imported SQLAlchemy for the tests above.
STORE_AT_HEAD = """
import sys
import numpy as np
import pandas as pd
from sigma.research.backtest import run_backtest
from sigma.store.backtest_file import store_backtest
from sigma.strategies.builtin import SmaCross

close = np.round(100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 400))), 2)
index = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC", name="ts")
bars = pd.DataFrame(
    {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 1.0},
    index=index,
)
result, _ = run_backtest(SmaCross(fast=5, slow=20), bars, symbol="W")
assert store_backtest(sys.argv[1], result, report_path=None) == 1
assert "sqlalchemy" not in sys.modules, "a SQLite file at head loaded SQLAlchemy"
"""


def test_storing_in_a_sqlite_file_at_head_does_not_load_sqlalchemy(tmp_path: Path) -> None:
    url = _migrated(tmp_path / "sigma.db")
    done = subprocess.run(
        [sys.executable, "-c", STORE_AT_HEAD, url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_a_damaged_file_is_named_and_left_as_it_was(tmp_path: Path) -> None:
    """`sigma backtest` stores into a file cut short: the error names it, says SQLite's reason
    and what to do (the command prints it as one line), and the file is not touched."""
    path = tmp_path / "sigma.db"
    _migrated(path)
    damaged = path.read_bytes()[:4096]
    path.write_bytes(damaged)
    with pytest.raises(DatabaseFileError) as raised:
        store_backtest(f"sqlite:///{path}", _result(), report_path=None)
    assert str(raised.value).startswith(
        f"SQLite database {path}: database disk image is malformed (SQLITE_CORRUPT); "
    )
    assert path.read_bytes() == damaged
    path.write_bytes(b"not SQLite at all, but long enough to have a header" * 3)
    with pytest.raises(DatabaseFileError, match=r"file is not a database \(SQLITE_NOTADB\)"):
        save_backtest_file(path, _result())
