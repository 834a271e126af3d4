"""Bars in and out as frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.store import read_bars, upsert_bars
from sigma.store.bars import COLUMNS
from sigma.store.models import BarRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _frame(n: int = 1200, start: datetime = T0, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    close = np.round(30000 + np.cumsum(rng.normal(0, 25, n)), 2) * scale
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC", name="ts")
    # Rounded like real quotes: float noise past 10 decimals would be rounded off by NUMERIC.
    return pd.DataFrame(
        {
            "open": np.round(close - 0.01, 2),
            "high": np.round(close + 5.25, 2),
            "low": np.round(close - 5.75, 2),
            "close": close,
            "volume": np.round(rng.uniform(0, 3, n), 8),
        },
        index=idx,
    )


def test_bars_round_trip(session: Session) -> None:
    frame = _frame()
    assert upsert_bars(session, "BTC/USDT", "1m", frame) == len(frame)
    session.commit()
    back = read_bars(session, "BTC/USDT", "1m")
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_freq=False)
    assert back.index.name == "ts" and str(back.index.tz) == "UTC"
    assert list(back.columns) == list(COLUMNS)


def test_values_are_stored_as_their_shortest_decimal(session: Session) -> None:
    frame = _frame(1).assign(open=0.1, high=0.3, low=0.1, close=0.2, volume=1e-10)
    upsert_bars(session, "D", "1d", frame)
    session.commit()
    row = session.scalars(select(BarRecord)).one()
    assert (row.open, row.high, row.close, row.volume) == (
        Decimal("0.1"),
        Decimal("0.3"),
        Decimal("0.2"),
        Decimal("1E-10"),
    )


def test_upsert_replaces_existing_bars(session: Session) -> None:
    upsert_bars(session, "ETH", "1m", _frame(10))
    session.commit()
    newer = _frame(10, start=T0 + timedelta(minutes=5), scale=2.0)
    upsert_bars(session, "ETH", "1m", newer)
    session.commit()
    back = read_bars(session, "ETH", "1m")
    assert len(back) == 15
    pd.testing.assert_frame_equal(back.iloc[5:], newer, check_freq=False)
    pd.testing.assert_frame_equal(back.iloc[:5], _frame(10).iloc[:5], check_freq=False)


def test_read_bars_range_is_half_open_and_per_series(session: Session) -> None:
    frame = _frame(10)
    upsert_bars(session, "A", "1m", frame)
    upsert_bars(session, "A", "5m", frame)
    upsert_bars(session, "B", "1m", frame)
    session.commit()
    start, end = frame.index[2].to_pydatetime(), frame.index[6].to_pydatetime()
    back = read_bars(session, "A", "1m", start=start, end=end)
    pd.testing.assert_frame_equal(back, frame.iloc[2:6], check_freq=False)
    assert len(read_bars(session, "A", "1m", start=start)) == 8
    assert len(read_bars(session, "A", "1m", end=end)) == 6


def test_empty_read_has_the_frame_layout(session: Session) -> None:
    back = read_bars(session, "NONE", "1m")
    assert back.empty and list(back.columns) == list(COLUMNS)
    assert isinstance(back.index, pd.DatetimeIndex) and back.index.name == "ts"
    assert str(back.index.tz) == "UTC"
    assert all(dtype == np.float64 for dtype in back.dtypes)


def test_naive_and_non_utc_indexes_are_taken_as_utc(session: Session) -> None:
    frame = _frame(3)
    naive = frame.tz_convert(None)
    upsert_bars(session, "N", "1m", naive)
    upsert_bars(session, "K", "1m", frame.tz_convert("Asia/Kolkata"))
    session.commit()
    for symbol in ("N", "K"):
        pd.testing.assert_frame_equal(read_bars(session, symbol, "1m"), frame, check_freq=False)


def test_bad_frames_are_rejected(session: Session) -> None:
    frame = _frame(3)
    with pytest.raises(ValueError, match="lacks columns"):
        upsert_bars(session, "X", "1m", frame.drop(columns="volume"))
    with pytest.raises(ValueError, match="DatetimeIndex"):
        upsert_bars(session, "X", "1m", frame.reset_index())
    frame.iloc[1, 0] = np.nan
    with pytest.raises(ValueError, match="open"):
        upsert_bars(session, "X", "1m", frame)


def test_upsert_refuses_unknown_dialects(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session.get_bind().dialect, "name", "oracle")
    with pytest.raises(NotImplementedError, match="oracle"):
        upsert_bars(session, "X", "1m", _frame(1))
