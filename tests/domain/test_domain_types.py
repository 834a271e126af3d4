"""Domain value types reject what cannot be real and keep money exact."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from sigma.domain import Bar, Fill, Order, OrderType, Position, Side, Tick, Trade, to_decimal, utc

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
D = Decimal


def test_to_decimal() -> None:
    assert to_decimal(0.1) == D("0.1") and to_decimal("  2.50 ") == D("2.50")
    assert to_decimal(3) == D(3) and to_decimal(D("1.5")) == D("1.5")
    for bad, msg in [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("NaN", "finite"),
        ("abc", "not a number"),
        (True, "bool"),
        (None, "NoneType"),
    ]:
        with pytest.raises(ValueError, match=msg):
            to_decimal(bad, name="price")  # type: ignore[arg-type]


def test_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    assert utc(datetime(2024, 1, 1, 9, tzinfo=seoul)) == datetime(2024, 1, 1, tzinfo=UTC)
    assert utc(datetime(2024, 1, 1)).tzinfo is UTC


def test_tick_validation() -> None:
    t = Tick.of("BTC", datetime(2024, 1, 1), "42000.5", 1, bid="42000", ask=42001)
    assert t.ts.tzinfo is UTC and t.bid == D(42000) and t.ask == D(42001)
    with pytest.raises(ValueError, match="price must be positive"):
        Tick.of("BTC", T0, -1)
    with pytest.raises(ValueError, match="volume must not be negative"):
        Tick.of("BTC", T0, 1, -1)
    with pytest.raises(ValueError, match="symbol must not be empty"):
        Tick.of("", T0, 1)
    with pytest.raises(ValueError, match="price must be finite"):
        Tick.of("BTC", T0, float("nan"))


def test_bar_validation() -> None:
    Bar("X", T0, D(10), D(11), D(9), D(10))
    with pytest.raises(ValueError, match="prices must be positive"):
        Bar("X", T0, D(0), D(11), D(9), D(10))
    with pytest.raises(ValueError, match="high/low do not bound"):
        Bar("X", T0, D(10), D(9.5), D(9), D(10))


def test_order_validation() -> None:
    o = Order("X", Side.BUY, qty=D(1), created_at=datetime(2024, 1, 1))
    assert o.is_open and o.created_at.tzinfo is UTC and len(o.client_order_id) == 32
    assert Order("X", Side.SELL, qty=D(1)).client_order_id != o.client_order_id
    cases = [
        ({"qty": D(1), "equity_fraction": D(1)}, "exactly one"),
        ({}, "exactly one"),
        ({"qty": D(0)}, "qty must be positive"),
        ({"equity_fraction": D(2)}, "equity_fraction"),
        ({"qty": D(1), "type": OrderType.LIMIT}, "limit_price"),
        ({"qty": D(1), "type": OrderType.STOP}, "stop_price"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(ValueError, match=msg):
            Order("X", Side.BUY, **kwargs)  # type: ignore[arg-type]
    assert Side.SELL.sign == -1 and Side.BUY.sign == 1


def test_fill_position_trade() -> None:
    f = Fill("id", "X", Side.SELL, D(2), D("10.5"), D("0.01"), datetime(2024, 1, 1))
    assert f.signed_qty == D(-2) and f.notional == D(21) and f.ts.tzinfo is UTC
    with pytest.raises(ValueError, match="fill id"):
        Fill("id", "X", Side.SELL, D(0), D(1), D(0), T0)
    p = Position("X", D(-2), D(10))
    assert not p.is_flat and p.market_value(D(9)) == D(-18) and p.unrealized_pnl(D(9)) == D(2)
    t = Trade("X", D(-2), T0, D(10), T0, D(9), D("0.1"), D("1.9"))
    assert t.return_pct == D("0.095") and not t.is_long


def test_client_order_ids_are_unique_hex_per_process() -> None:
    from sigma.domain.orders import _IdSource, new_client_order_id

    ids = [new_client_order_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    # Another process (a restart) draws another prefix.
    assert _IdSource()()[:20] != new_client_order_id()[:20]
    # A forked child must not repeat its parent's ids.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_client_order_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 32 and child[:20] != new_client_order_id()[:20]
    # A counter at its last value draws a new prefix rather than growing a 33rd digit.
    source = _IdSource()
    source._counter = itertools.count(_IdSource._LAST)
    last, wrapped = source(), source()
    assert last.endswith("f" * 12) and len(wrapped) == 32 and wrapped.endswith("0" * 12)
    assert wrapped[:20] != last[:20]
