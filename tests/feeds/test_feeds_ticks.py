"""The tick wire format: round trip, every rejection reason, and decode speed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma.domain import Tick
from sigma.feeds.ticks import (
    _CANONICAL,
    MAX_FRAME_BYTES,
    TickError,
    decode_tick,
    encode_tick,
    tick_from_fields,
    valid_symbol,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = T0.timestamp() + 3600


def clock() -> float:
    return NOW


def frame(**fields: object) -> bytes:
    base: dict[str, object] = {"symbol": "BTC", "ts": "2024-01-01T00:00:00Z", "price": "100.5"}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def decode(raw: bytes | bytearray | str) -> Tick:
    return decode_tick(raw, clock=clock)


def test_round_trip_with_and_without_quotes() -> None:
    plain = Tick(symbol="BTC/USDT", ts=T0, price=Decimal("42000.10"), volume=Decimal("0.25"))
    quoted = Tick.of("ETH", T0 + timedelta(microseconds=1500), "2500", 3, bid="2499.9", ask=2500.1)
    for tick in (plain, quoted):
        assert decode(encode_tick(tick)) == tick
    wire = json.loads(encode_tick(quoted))
    assert wire == {
        "symbol": "ETH",
        "ts": "2024-01-01T00:00:00.001500Z",
        "price": "2500",
        "volume": "3",
        "bid": "2499.9",
        "ask": "2500.1",
    }
    assert "bid" not in json.loads(encode_tick(plain))


def test_accepts_numbers_epoch_ms_offsets_and_str_frames() -> None:
    tick = decode(frame(ts=1704067200123, price=0.1, volume=2, bid=None, ask=None, extra=[1]))
    assert tick.ts == T0 + timedelta(milliseconds=123)
    assert tick.price == Decimal("0.1")  # JSON numbers stay exact
    assert tick.volume == 2 and tick.bid is None
    naive = decode(frame(ts="2024-01-01T01:00:00"))
    offset = decode(frame(ts="2024-01-01T02:00:00+01:00").decode())
    assert naive.ts == offset.ts == T0 + timedelta(hours=1)
    assert offset.ts.tzinfo == UTC
    assert decode(frame(ts=1704067200000.5)).ts == T0 + timedelta(microseconds=500)
    assert decode(bytearray(frame())).symbol == "BTC"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "utf8"),
        (b"{not json", "json"),
        (b"[" * 3000 + b"]" * 1000, "json"),
        (b"[1, 2]", "not_object"),
        (b'"tick"', "not_object"),
        (b"x" * (MAX_FRAME_BYTES + 1), "oversized"),
        ("é" * (MAX_FRAME_BYTES // 2 + 1), "oversized"),
        ("x" * (MAX_FRAME_BYTES + 1), "oversized"),
        (frame(symbol=...), "missing"),
        (frame(ts=...), "missing"),
        (frame(price=...), "missing"),
        (frame(symbol=""), "symbol"),
        (frame(symbol="A" * 33), "symbol"),
        (frame(symbol="BTC USD"), "symbol"),
        (frame(symbol=7), "symbol"),
        (frame(ts="yesterday"), "ts"),
        (frame(ts=True), "type"),
        (frame(ts=[1]), "type"),
        (frame(ts=-1), "ts"),
        (frame(ts=10**20), "ts"),
        (b'{"symbol":"BTC","ts":NaN,"price":1}', "ts"),
        (b'{"symbol":"BTC","ts":1e400,"price":1}', "ts"),
        (frame(ts="2024-01-01T01:00:06Z"), "future"),
        (b'{"symbol":"BTC","ts":1704067200000,"price":NaN}', "price"),
        (b'{"symbol":"BTC","ts":1704067200000,"price":Infinity}', "price"),
        (b'{"symbol":"BTC","ts":1704067200000,"price":-Infinity}', "price"),
        (frame(price="nan"), "price"),
        (frame(price="inf"), "price"),
        (frame(price="abc"), "price"),
        (frame(price="1" * 65), "price"),
        (frame(price=0), "price"),
        (frame(price="-1"), "price"),
        (frame(price=True), "type"),
        (frame(price={"v": 1}), "type"),
        (frame(price="1e13"), "too_large"),
        (frame(price=10**13), "too_large"),
        (b'{"symbol":"BTC","ts":1704067200000,"price":1e999999}', "too_large"),
        (frame(volume="-0.1"), "volume"),
        (frame(volume="1e300"), "too_large"),
        (frame(bid="0"), "bid"),
        (frame(ask=[]), "type"),
        (frame(bid="101", ask="100"), "crossed"),
    ],
)
def test_rejects_with_reason(raw: bytes | str, reason: str) -> None:
    with pytest.raises(TickError) as info:
        decode(raw)
    assert info.value.reason == reason
    assert str(info.value)
    assert isinstance(info.value, ValueError)


def test_rejects_non_frames() -> None:
    with pytest.raises(TickError, match="bytes or str") as info:
        decode_tick(123)  # type: ignore[arg-type]
    assert info.value.reason == "type"


def test_future_limit_uses_the_injected_clock() -> None:
    raw = frame(ts="2024-01-01T01:00:04.900Z")
    assert decode(raw).ts.second == 4
    with pytest.raises(TickError, match="in the future"):
        decode_tick(raw, clock=clock, max_future=1.0)


def test_non_utc_offsets_and_adapters_floats() -> None:
    tick = tick_from_fields(
        {"symbol": "X", "ts": 1704067200000.0, "price": 0.1, "volume": 1.5, "bid": 0.05},
        clock=clock,
    )
    assert tick.price == Decimal("0.1") and tick.volume == Decimal("1.5")
    with pytest.raises(TickError):
        tick_from_fields({"symbol": "X", "ts": 1.0, "price": float("nan")}, clock=clock)
    with pytest.raises(TickError):
        tick_from_fields({"symbol": "X", "ts": float("inf"), "price": 1.0}, clock=clock)
    east = datetime(2024, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    assert encode_tick(Tick("X", east, Decimal(1))).startswith(b'{"symbol":"X","ts":"2024-01-01T00')


def test_valid_symbol() -> None:
    assert valid_symbol("BTC/USDT") and valid_symbol("es-2024.Q_1")
    assert not valid_symbol("") and not valid_symbol(None) and not valid_symbol("a\nb")


# --- the fast path for frames in encode_tick's own shape -------------------------------------
def compact(ts: str, price: str, volume: str, symbol: str = "BTC") -> bytes:
    """A frame in encode_tick's exact shape (the fast path's)."""
    fields = {"symbol": symbol, "ts": ts, "price": price, "volume": volume}
    raw = json.dumps(fields, separators=(",", ":")).encode()
    assert _CANONICAL.fullmatch(raw) is not None
    return raw


def general(raw: bytes) -> Tick:
    """The general path alone: JSON parser, then the field checks."""
    return tick_from_fields(json.loads(raw, parse_float=Decimal), clock=clock)


def outcome(decoder: Callable[[bytes], Tick], raw: bytes) -> Tick | str:
    try:
        return decoder(raw)
    except TickError as exc:
        return exc.reason


@settings(max_examples=300, deadline=None)
@given(
    symbol=st.from_regex(r"[A-Za-z0-9._/-]{1,32}", fullmatch=True),
    seconds=st.integers(min_value=0, max_value=2 * 3600),
    micros=st.integers(min_value=0, max_value=999_999),
    price=st.decimals(min_value=0, max_value=Decimal(10) ** 13 - 1, places=8),
    volume=st.decimals(min_value=0, max_value=Decimal(10) ** 13 - 1, places=3),
)
def test_canonical_frames_decode_as_the_general_path_does(
    symbol: str, seconds: int, micros: int, price: Decimal, volume: Decimal
) -> None:
    ts = T0 + timedelta(seconds=seconds, microseconds=micros)
    raw = compact(ts.isoformat().replace("+00:00", "Z"), f"{price:f}", f"{volume:f}", symbol)
    assert outcome(decode, raw) == outcome(general, raw)


@pytest.mark.parametrize(
    ("price", "volume", "ts", "reason"),
    [
        ("0", "1", "2024-01-01T00:00:00Z", "price"),
        ("0.000", "1", "2024-01-01T00:00:00Z", "price"),
        ("1000000000001", "1", "2024-01-01T00:00:00Z", "too_large"),
        ("5", "1000000000001", "2024-01-01T00:00:00Z", "too_large"),
        ("5", "1", "2024-01-01T02:00:00Z", "future"),
        ("5", "1", "2024-13-01T00:00:00Z", "ts"),
    ],
)
def test_canonical_frames_are_checked_like_any_other(
    price: str, volume: str, ts: str, reason: str
) -> None:
    raw = compact(ts, price, volume)
    assert outcome(decode, raw) == outcome(general, raw) == reason
