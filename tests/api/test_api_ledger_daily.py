"""`ledger_daily` on PostgreSQL: the trigger keeps it equal to the ledger summed per UTC day,
mode, strategy and symbol through inserts, updates, deletes and truncation; the migration sums
in what was there before; and ledger totals for any window (whole days from the summary,
partial days from the entries) equal the exact sums of the entries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select, text, update

from sigma.api.reader import Reader
from sigma.api.routers.trading import GroupBy, Totals, ledger_totals
from sigma.store.db import alembic_config, create_db_engine, init_db
from sigma.store.models import LedgerDaily, LedgerEntry

pytestmark = pytest.mark.pg

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
RAW = text(
    "SELECT mode, (ts AT TIME ZONE 'UTC')::date, strategy, coalesce(symbol, ''), "
    "sum(cash_delta), sum(fee), sum(realized_pnl), count(*) FROM ledger GROUP BY 1, 2, 3, 4"
)
# No shrinking: each example is a round of database writes, and an unshrunk failing example
# is printed all the same.
SETTINGS = settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

amounts = st.decimals(
    min_value=Decimal("-1000"), max_value=Decimal("1000"), places=3, allow_nan=False
)
entries = st.fixed_dictionaries(
    {
        # Four days, to the second, with midnights themselves likely.
        "ts": st.integers(0, 4 * 86400 - 1).map(lambda s: DAY0 + timedelta(seconds=s))
        | st.integers(0, 3).map(lambda d: DAY0 + timedelta(days=d)),
        "mode": st.sampled_from(["paper", "live"]),
        "symbol": st.sampled_from(["BTC", "ETH", None]),
        "strategy": st.sampled_from(["a", "b"]),
        "cash_delta": amounts,
        "fee": amounts.map(abs),
        "realized_pnl": amounts,
        "reason": st.just("fill"),
    }
)


def _summary(engine: Engine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    with engine.connect() as conn:
        summary = {tuple(r[:4]): tuple(r[4:]) for r in conn.execute(select(LedgerDaily.__table__))}
        raw = {tuple(r[:4]): tuple(r[4:]) for r in conn.execute(RAW)}
    assert summary == raw
    return summary


@pytest.fixture
def engine(pg_schema_url: str) -> Iterator[Engine]:
    eng = init_db(pg_schema_url)
    yield eng
    eng.dispose()


@SETTINGS
@given(
    first=st.lists(entries, max_size=12),
    changes=st.lists(st.tuples(st.integers(0, 11), entries | st.none()), max_size=6),
)
def test_trigger_keeps_the_daily_sums_equal_to_the_ledger(
    engine: Engine, first: list[dict[str, Any]], changes: list[tuple[int, Any]]
) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE ledger"))
    assert _summary(engine) == {}
    with engine.begin() as conn:
        ids = [conn.execute(insert(LedgerEntry).values(e)).inserted_primary_key[0] for e in first]
    _summary(engine)
    for index, new in changes:
        if not ids:
            break
        row_id = ids[index % len(ids)]
        with engine.begin() as conn:
            if new is None:
                conn.execute(delete(LedgerEntry).where(LedgerEntry.id == row_id))
                ids.remove(row_id)
            else:  # may move the entry to another day, mode, strategy or symbol
                conn.execute(update(LedgerEntry).where(LedgerEntry.id == row_id).values(new))
        _summary(engine)


def test_rolled_back_entries_leave_no_trace(engine: Engine, pg_schema_url: str) -> None:
    entry = {
        "ts": DAY0,
        "mode": "paper",
        "symbol": "BTC",
        "strategy": "a",
        "cash_delta": Decimal("1.5"),
        "fee": Decimal("0.1"),
        "realized_pnl": Decimal("0"),
        "reason": "fill",
    }
    with engine.begin() as conn:
        conn.execute(insert(LedgerEntry).values(entry))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(insert(LedgerEntry).values(entry))
        raise RuntimeError("the worker's transaction fails after booking")
    assert _summary(engine) == {
        ("paper", DAY0.date(), "a", "BTC"): (Decimal("1.5"), Decimal("0.1"), Decimal("0"), 1)
    }


def test_upgrade_sums_in_the_existing_ledger_and_downgrade_removes_it(
    pg_schema_url: str,
) -> None:
    engine = create_db_engine(pg_schema_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0004")
        with engine.begin() as conn:
            for day, cash in ((0, "1.25"), (0, "2"), (1, "-3.5")):
                conn.execute(
                    insert(LedgerEntry).values(
                        ts=DAY0 + timedelta(days=day, hours=23),
                        mode="live",
                        symbol=None,
                        strategy="a",
                        cash_delta=Decimal(cash),
                        fee=Decimal(0),
                        realized_pnl=Decimal(cash),
                        reason="fill",
                    )
                )
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0005")
        summary = _summary(engine)
        assert summary[("live", DAY0.date(), "a", "")][0] == Decimal("3.25")
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('ledger_daily')")).scalar() is None
            functions = conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'ledger_daily%'")
            ).scalar()
        assert functions == 0
    finally:
        engine.dispose()


def _expected(
    rows: list[dict[str, Any]],
    by: GroupBy,
    mode: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Totals]:
    totals: dict[str, Totals] = {}
    for e in rows:
        if mode is not None and e["mode"] != mode:
            continue
        if (since is not None and e["ts"] < since) or (until is not None and e["ts"] >= until):
            continue
        key = {
            "mode": e["mode"],
            "day": e["ts"].date().isoformat(),
            "strategy": e["strategy"],
            "symbol": e["symbol"] or "",
        }[by]
        cash, fee, pnl, n = totals.get(key, (Decimal(0), Decimal(0), Decimal(0), 0))
        totals[key] = (cash + e["cash_delta"], fee + e["fee"], pnl + e["realized_pnl"], n + 1)
    return totals


def bounds(rows: list[dict[str, Any]]) -> st.SearchStrategy[datetime | None]:
    """Window ends where they matter: at, just before and just after an entry, at and around
    midnights, anywhere, or open."""
    near = [e["ts"] + timedelta(microseconds=d) for e in rows for d in (-1, 0, 1)]
    midnights = [DAY0 + timedelta(days=d, microseconds=m) for d in range(-1, 6) for m in (-1, 0, 1)]
    anywhere = st.integers(-86400, 5 * 86400).map(lambda s: DAY0 + timedelta(seconds=s))
    return st.none() | st.sampled_from(midnights + near) | anywhere


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@SETTINGS
@given(
    rows=st.lists(entries, min_size=1, max_size=25),
    by=st.sampled_from(["mode", "day", "strategy", "symbol"]),
    mode=st.sampled_from([None, "paper", "live"]),
    naive=st.booleans(),
    data=st.data(),
)
def test_totals_for_any_window_equal_the_exact_sums_of_the_entries(
    engine: Engine,
    loop: asyncio.AbstractEventLoop,
    rows: list[dict[str, Any]],
    by: GroupBy,
    mode: str | None,
    naive: bool,
    data: st.DataObject,
) -> None:
    since, until = data.draw(bounds(rows)), data.draw(bounds(rows))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE ledger"))
        for row in rows:
            conn.execute(insert(LedgerEntry).values(row))
    reader = Reader(lambda: engine)
    # A window without an offset is taken as UTC, like the timestamps themselves.
    lo, hi = (t.replace(tzinfo=None) if naive and t is not None else t for t in (since, until))
    try:
        got = loop.run_until_complete(
            ledger_totals(reader, by, mode, lo, hi)  # type: ignore[arg-type]
        )
    finally:
        loop.run_until_complete(reader.close())
    assert got == _expected(rows, by, mode, since, until)
