"""The trading query service on SQLite and PostgreSQL: listings with their filters, pages and
trimmed amounts, positions, and ledger totals summed by the database to the exact Decimal of
the entries (on SQLite as integers, for amounts well past 2^63 units of 10^-10)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from sigma.store import session_factory, session_scope
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.store.queries import trading
from sigma.store.reader import Reader

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# (hours after T0, mode, strategy, symbol, cash, fee, pnl): two UTC days, both signs, amounts
# whose units of 10^-10 overflow a 64-bit integer, and decimals that carry into the whole part.
ENTRIES = [
    (0, "paper", "a", "BTC", "-123456789012.1234567891", "0.0000000001", "0"),
    (1, "paper", "a", "BTC", "123456789013.9999999999", "1.5", "-0.0000000001"),
    (2, "paper", "b", "ETH", "-0.5", "0.25", "-0.7500000001"),
    (3, "live", "a", None, "9999999999999999.9999999999", "0", "12.3456789"),
    (3, "live", "b", "ETH", "-0.0000000001", "0.0000000009", "0.9999999999"),
]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def reader(engine: Engine) -> Iterator[Reader]:
    reader = Reader(lambda: engine)
    yield reader
    asyncio.run(reader.close())


def _ledger(engine: Engine) -> None:
    with session_scope(session_factory(engine)) as session:
        for hours, mode, strategy, symbol, cash, fee, pnl in ENTRIES:
            session.add(
                LedgerEntry(
                    ts=T0 + hours * HOUR,
                    mode=mode,
                    strategy=strategy,
                    symbol=symbol,
                    cash_delta=Decimal(cash),
                    fee=Decimal(fee),
                    realized_pnl=Decimal(pnl),
                    reason="fill",
                )
            )


def _expected(by: str, entries: list[tuple[Any, ...]]) -> dict[str, trading.Totals]:
    out: dict[str, trading.Totals] = {}
    for hours, mode, strategy, symbol, cash, fee, pnl in entries:
        ts = T0 + hours * HOUR
        day = ts.date().isoformat()
        key = {"mode": mode, "strategy": strategy, "symbol": symbol or "", "day": day}[by]
        c, f, p, n = out.get(key, (Decimal(0), Decimal(0), Decimal(0), 0))
        out[key] = (c + Decimal(cash), f + Decimal(fee), p + Decimal(pnl), n + 1)
    return out


@pytest.mark.parametrize("by", ["mode", "day", "strategy", "symbol"])
def test_ledger_totals_are_the_exact_sums_per_group(
    engine: Engine, reader: Reader, by: trading.GroupBy
) -> None:
    _ledger(engine)
    assert _run(trading.ledger_totals(reader, by)) == _expected(by, ENTRIES)


def test_ledger_totals_of_a_mode_and_window(engine: Engine, reader: Reader) -> None:
    _ledger(engine)
    since, until = T0 + HOUR, T0 + 3 * HOUR
    got = _run(trading.ledger_totals(reader, "day", mode="paper", since=since, until=until))
    assert got == _expected("day", [e for e in ENTRIES if e[1] == "paper" and 1 <= e[0] < 3])
    assert _run(trading.ledger_totals(reader, "day", mode="live", until=T0)) == {}
    # Whole days in the middle (PostgreSQL: from `ledger_daily`), partial ones at both ends.
    wide = _run(trading.ledger_totals(reader, "strategy", since=since, until=T0 + 2 * DAY))
    assert wide == _expected("strategy", [e for e in ENTRIES if e[0] >= 1])


def _orders(engine: Engine) -> None:
    with session_scope(session_factory(engine)) as session:
        for i, (symbol, status, mode) in enumerate(
            [("BTC", "filled", "paper"), ("ETH", "new", "paper"), ("BTC", "filled", "live")]
        ):
            order = OrderRecord(
                client_order_id=f"c{i}",
                mode=mode,
                symbol=symbol,
                side="buy",
                qty=Decimal("1.5"),
                limit_price=None,
                stop_price=None,
                status=status,
                strategy="a",
                filled_qty=Decimal("1.5") if status == "filled" else Decimal(0),
                avg_fill_price=Decimal("100.25") if status == "filled" else None,
                created_at=T0 + i * HOUR,
            )
            session.add(order)
            if status == "filled":
                session.add(
                    FillRecord(
                        order=order,
                        qty=Decimal("1.5"),
                        price=Decimal("100.25"),
                        fee=Decimal("0"),
                        ts=T0 + i * HOUR,
                    )
                )
        session.add(PositionRecord(symbol="BTC", strategy="a", mode="paper", qty=Decimal("1.5")))
        session.add(PositionRecord(symbol="BTC", strategy="a", mode="live", qty=Decimal("-2")))


def test_orders_newest_first_filtered_and_paged(engine: Engine, reader: Reader) -> None:
    _orders(engine)
    every = _run(trading.orders(reader))
    assert [o["client_order_id"] for o in every] == ["c2", "c1", "c0"]
    first = every[-1]
    assert (first["qty"], first["limit_price"], first["avg_fill_price"]) == ("1.5", None, "100.25")
    assert first["created_at"] == T0
    btc = _run(trading.orders(reader, symbol="BTC", status="filled", limit=1, offset=1))
    assert [o["client_order_id"] for o in btc] == ["c0"]
    window = _run(trading.orders(reader, mode="paper", since=T0 + HOUR, until=T0 + 2 * HOUR))
    assert [o["client_order_id"] for o in window] == ["c1"]


def test_fills_carry_their_order_and_filter_on_it(engine: Engine, reader: Reader) -> None:
    _orders(engine)
    fills = _run(trading.fills(reader, mode="paper"))
    assert [(f["client_order_id"], f["symbol"], f["side"]) for f in fills] == [("c0", "BTC", "buy")]
    assert (fills[0]["qty"], fills[0]["price"], fills[0]["fee"]) == ("1.5", "100.25", "0")
    assert len(_run(trading.fills(reader, symbol="BTC"))) == 2


def test_positions_of_every_mode_or_one(engine: Engine, reader: Reader) -> None:
    _orders(engine)
    assert [(p["mode"], p["qty"]) for p in _run(trading.positions(reader))] == [
        ("live", "-2"),
        ("paper", "1.5"),
    ]
    assert [p["qty"] for p in _run(trading.positions(reader, "paper"))] == ["1.5"]
