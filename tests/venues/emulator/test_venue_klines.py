"""One-minute candles built from the tape, and longer intervals folded from them."""

from __future__ import annotations

from decimal import Decimal

from sigma.venues.emulator.klines import MINUTE_MS, Candle, CandleSeries

D = Decimal
T0 = 1_700_000_040_000  # 2023-11-14 22:14:00 UTC: a minute boundary
assert T0 % MINUTE_MS == 0


def _minute(i: int, o: str, h: str, lo: str, c: str, v: str = "1") -> Candle:
    return Candle(T0 + i * MINUTE_MS, D(o), D(h), D(lo), D(c), D(v), D(c) * D(v), 1)


def test_trades_fold_into_their_minute() -> None:
    series = CandleSeries()
    assert series.last is None and len(series) == 0
    first = series.add(T0 + 1_500, D(100), D(2))
    assert first == Candle(T0, D(100), D(100), D(100), D(100), D(2), D(200), 1)
    assert series.add(T0 + 30_000, D(105), D(1)) is first
    series.add(T0 + 59_999, D(98), D("0.5"))
    assert first == Candle(T0, D(100), D(105), D(98), D(98), D("3.5"), D(354), 3)
    second = series.add(T0 + MINUTE_MS, D(99), D(1))
    assert second.open_ms == T0 + MINUTE_MS and second.open == D(99)
    assert len(series) == 2 and series.last is second
    # A late trade (its minute already closed) goes into the latest candle.
    series.add(T0 + 10, D(97), D(1))
    assert len(series) == 2
    assert (second.low, second.close, second.trades) == (D(97), D(97), 2)
    assert first.trades == 3


def test_a_gap_of_minutes_without_trades_leaves_no_candles() -> None:
    series = CandleSeries()
    series.add(T0, D(1), D(1))
    series.add(T0 + 5 * MINUTE_MS, D(2), D(1))
    assert [c.open_ms for c in series.folded(MINUTE_MS)] == [T0, T0 + 5 * MINUTE_MS]


def test_extend_appends_history_in_time_order_only() -> None:
    series = CandleSeries()
    series.extend([_minute(0, "1", "1", "1", "1"), _minute(1, "2", "2", "2", "2")])
    series.extend([_minute(1, "9", "9", "9", "9"), _minute(0, "9", "9", "9", "9")])
    series.extend([_minute(2, "3", "3", "3", "3")])
    assert [c.close for c in series.folded(MINUTE_MS)] == [D(1), D(2), D(3)]


def test_the_series_keeps_a_bounded_history() -> None:
    series = CandleSeries(keep=3)
    for i in range(5):
        series.add(T0 + i * MINUTE_MS, D(i + 1), D(1))
    assert len(series) == 3
    assert [c.open for c in series.folded(MINUTE_MS)] == [D(3), D(4), D(5)]


def test_folded_builds_longer_candles_without_touching_the_minutes() -> None:
    series = CandleSeries()
    # T0 is 22:14: the 5-minute grid puts minute 0 (22:14) in the 22:10 candle, minutes 1-5
    # (22:15-22:19) in the 22:15 one and minute 6 (22:20) in the 22:20 one.
    minutes = [
        _minute(0, "10", "12", "9", "11", "1"),
        _minute(1, "11", "15", "10", "14", "2"),
        _minute(2, "14", "14", "8", "9", "3"),
        _minute(3, "9", "10", "9", "10", "4"),
        _minute(6, "10", "11", "10", "11", "5"),
    ]
    series.extend(minutes)
    five = 5 * MINUTE_MS
    folded = list(series.folded(five))
    assert [c.open_ms for c in folded] == [T0 - 4 * MINUTE_MS, T0 + MINUTE_MS, T0 + 6 * MINUTE_MS]
    middle = folded[1]
    assert (middle.open, middle.high, middle.low, middle.close) == (D(11), D(15), D(8), D(10))
    assert (middle.volume, middle.quote_volume, middle.trades) == (D(9), D(95), 3)
    assert folded[0] == Candle(T0 - 4 * MINUTE_MS, D(10), D(12), D(9), D(11), D(1), D(11), 1)
    # The minutes are as they were.
    assert list(series.folded(MINUTE_MS)) == minutes
    # start_ms and end_ms bound the candles' starts, inclusive.
    bounded = list(series.folded(five, start_ms=T0 + MINUTE_MS, end_ms=T0 + MINUTE_MS))
    assert [c.open_ms for c in bounded] == [T0 + MINUTE_MS]
    assert bounded[0].volume == D(9)
    assert list(series.folded(five, start_ms=T0 + 7 * MINUTE_MS)) == []
    assert list(series.folded(five, end_ms=T0 - 5 * MINUTE_MS)) == []


def test_folded_with_an_offset_shifts_the_grid() -> None:
    series = CandleSeries()
    series.extend([_minute(i, str(i + 1), str(i + 1), str(i + 1), str(i + 1)) for i in range(4)])
    # A 2-minute grid shifted by a minute: T0 (an even minute) now ends a candle.
    shifted = list(series.folded(2 * MINUTE_MS, offset_ms=MINUTE_MS))
    assert [(c.open_ms - T0) // MINUTE_MS for c in shifted] == [-1, 1, 3]
    assert [(c.open, c.close) for c in shifted] == [(D(1), D(1)), (D(2), D(3)), (D(4), D(4))]
    plain = list(series.folded(2 * MINUTE_MS))
    assert [(c.open, c.close) for c in plain] == [(D(1), D(2)), (D(3), D(4))]


def test_folding_nothing_yields_nothing() -> None:
    assert list(CandleSeries().folded(MINUTE_MS)) == []


def test_since_reads_the_recent_candles_from_the_newest_end() -> None:
    series = CandleSeries()
    series.extend([_minute(i, str(i + 1), str(i + 1), str(i + 1), str(i + 1)) for i in range(5)])
    assert [c.open for c in series.since(T0 + 3 * MINUTE_MS)] == [D(4), D(5)]
    assert [c.open for c in series.since(T0 + 2 * MINUTE_MS + 1)] == [D(4), D(5)]
    assert len(series.since(T0)) == 5
    assert len(series.since(0)) == 5
    assert series.since(T0 + 5 * MINUTE_MS) == []
    assert CandleSeries().since(0) == []
