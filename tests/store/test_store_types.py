"""Exact Decimal and UTC time on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from sigma.store.models import TickRecord
from sigma.store.types import ExactDecimal, UTCDateTime, quantize

T0 = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _tick(symbol: str, ts: datetime = T0, **values: object) -> TickRecord:
    fields: dict[str, object] = {"price": Decimal("1")} | values
    return TickRecord(symbol=symbol, ts=ts, **fields)


def _reload(session: Session, symbol: str) -> TickRecord:
    session.commit()
    session.expunge_all()
    return session.scalars(select(TickRecord).where(TickRecord.symbol == symbol)).one()


@pytest.mark.parametrize(
    "value",
    [
        Decimal("12345.6789012345"),
        Decimal("-0.0000000001"),
        Decimal("999999999999999999.9999999999"),
        Decimal("0.1"),
        Decimal("0"),
        Decimal("1E+3"),
    ],
)
def test_decimal_round_trips_exactly(session: Session, value: Decimal) -> None:
    session.add(_tick("DEC", price=value, bid=None))
    back = _reload(session, "DEC")
    assert isinstance(back.price, Decimal)
    assert back.price == value
    assert back.price.as_tuple().exponent == -10
    assert back.bid is None


def test_extra_decimals_round_half_even_like_numeric(session: Session) -> None:
    session.add(_tick("RND", price=Decimal("1.00000000005"), volume=Decimal("1.00000000015")))
    back = _reload(session, "RND")
    assert back.price == Decimal("1.0000000000")
    assert back.volume == Decimal("1.0000000002")


def test_decimal_too_large_is_rejected(session: Session) -> None:
    session.add(_tick("BIG", price=Decimal("1E+18")))
    with pytest.raises(StatementError):
        session.flush()


def test_quantize_rejects_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        quantize(Decimal("NaN"))
    with pytest.raises(ValueError, match="NUMERIC"):
        quantize(Decimal("1E+30"))
    assert quantize(0.1) == Decimal("0.1000000000")


def test_timestamps_read_back_utc_aware(session: Session) -> None:
    plus5 = T0.astimezone(timezone(timedelta(hours=5)))
    session.add(_tick("TZ", ts=plus5))
    back = _reload(session, "TZ")
    assert back.ts == T0
    assert back.ts.tzinfo is UTC
    assert back.ts.utcoffset() == timedelta(0)


def test_naive_timestamp_is_taken_as_utc(session: Session) -> None:
    session.add(_tick("NAIVE", ts=T0.replace(tzinfo=None)))
    assert _reload(session, "NAIVE").ts == T0


def test_utc_whatever_the_connection_time_zone(session: Session) -> None:
    session.add(_tick("ZONE"))
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
    ts = session.scalars(select(TickRecord.ts).where(TickRecord.symbol == "ZONE")).one()
    assert ts == T0 and ts.tzinfo is UTC


def test_time_range_filters_compare_instants(session: Session) -> None:
    for i in range(3):
        session.add(_tick("RANGE", ts=T0 + timedelta(minutes=i)))
    session.commit()
    later = (T0 + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=-7)))
    rows = session.scalars(
        select(TickRecord.ts).where(TickRecord.symbol == "RANGE", TickRecord.ts >= later)
    ).all()
    assert rows == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]


def test_types_declare_python_types() -> None:
    assert ExactDecimal().python_type is Decimal
    assert UTCDateTime().python_type is datetime
