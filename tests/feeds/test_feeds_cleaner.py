"""DataCleaner: drops with reasons and logs, whitelist, ordering, bounded memory."""

from __future__ import annotations

import json
import logging
import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from sigma.domain import Tick
from sigma.feeds.cleaner import DataCleaner
from sigma.feeds.ticks import encode_tick
from sigma.risk.symbol_map import SymbolMap

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NOW = T0.timestamp() + 86_400


def clock() -> float:
    return NOW


def wire(symbol: str = "BTC", seconds: float = 0, price: str = "100") -> bytes:
    return encode_tick(Tick.of(symbol, T0 + timedelta(seconds=seconds), price))


def test_accepts_good_frames_and_counts() -> None:
    cleaner = DataCleaner(clock=clock)
    tick = cleaner.clean(wire())
    assert tick is not None and tick.price == 100
    assert cleaner.clean_data(wire(seconds=1).decode()) is not None
    assert cleaner.accepted == 2 and cleaner.dropped == 0


def test_drop_is_logged_with_reason_and_preview(caplog: pytest.LogCaptureFixture) -> None:
    cleaner = DataCleaner(clock=clock)
    hostile = b'{"symbol":"BTC","price":"1"' + b" " * 500 + b', "x": "TAIL"}'
    with caplog.at_level(logging.WARNING, logger="sigma.feeds.cleaner"):
        assert cleaner.clean(hostile) is None
        assert cleaner.clean(b"\n2024-01-01 FAKE LOG LINE") is None
    first, second = (record.getMessage() for record in caplog.records)
    assert "(missing)" in first and '{"symbol":"BTC"' in first
    assert "TAIL" not in first  # only the first 200 characters
    assert "(json)" in second and "\n" not in second  # escaped: no forged log lines
    assert cleaner.drops == {"missing": 1, "json": 1}


def test_repeated_drops_fold_per_reason_and_keep_exact_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleaner = DataCleaner(clock=clock)
    with caplog.at_level(logging.WARNING, logger="sigma.feeds.cleaner"):
        for _ in range(500):
            assert cleaner.clean(b"not json") is None
            assert cleaner.clean(b"[1]") is None
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2  # the first of each reason, the rest folded
    assert "(json)" in lines[0] and "(not_object)" in lines[1]
    assert cleaner.drops == {"json": 500, "not_object": 500}
    other = DataCleaner(clock=clock)  # another feed's first drop is not hidden
    with caplog.at_level(logging.WARNING, logger="sigma.feeds.cleaner"):
        assert other.clean(b"not json") is None
    assert len(caplog.records) == 3


def test_a_silenced_logger_still_counts_drops(caplog: pytest.LogCaptureFixture) -> None:
    cleaner = DataCleaner(clock=clock)
    with caplog.at_level(logging.ERROR, logger="sigma.feeds.cleaner"):
        assert cleaner.clean(b"not json") is None
    assert not caplog.records and cleaner.drops == {"json": 1}


def test_whitelist_and_out_of_order() -> None:
    cleaner = DataCleaner(["BTC", "ETH"], clock=clock)
    assert cleaner.clean(wire("DOGE")) is None
    assert cleaner.clean(wire("BTC", 10)) is not None
    assert cleaner.clean(wire("BTC", 10)) is not None  # same timestamp is fine
    assert cleaner.clean(wire("BTC", 9)) is None
    assert cleaner.clean(wire("ETH", 1)) is not None  # ordering is per symbol
    assert cleaner.drops == {"unknown_symbol": 1, "out_of_order": 1}
    cleaner.reset()
    assert cleaner.clean(wire("BTC", 9)) is not None and cleaner.accepted == 1


def test_check_for_ticks_built_by_adapters() -> None:
    cleaner = DataCleaner(["BTC"], clock=clock)
    assert cleaner.check(Tick.of("BTC", T0, 1)) is not None
    assert cleaner.check(Tick.of("BTC", T0 + timedelta(days=2), 1)) is None
    assert cleaner.check(Tick.of("ETH", T0, 1)) is None
    assert cleaner.drops == {"future": 1, "unknown_symbol": 1}


def test_unexpected_errors_and_types_are_drops() -> None:
    def broken_clock() -> float:
        raise RuntimeError("clock broke")

    cleaner = DataCleaner(clock=broken_clock)
    assert cleaner.clean(wire()) is None
    assert cleaner.clean(None) is None
    assert cleaner.clean(12.5) is None
    assert cleaner.drops == {"error": 1, "type": 2}


def test_symbol_state_is_bounded() -> None:
    cleaner = DataCleaner(clock=clock, max_symbols=3)
    for i in range(10):
        assert cleaner.clean(wire(f"S{i}", i)) is not None
    assert list(cleaner._last_ts) == ["S7", "S8", "S9"]
    table: SymbolMap[str, int] = SymbolMap(2)
    table.touch("a", 1)
    table.touch("b", 2)
    table.touch("a", 3)
    table.touch("c", 4)
    assert dict(table) == {"a": 3, "c": 4}
    with pytest.raises(ValueError):
        SymbolMap(0)


def _hostile(rng: random.Random, i: int) -> object:
    good = {"symbol": "BTC", "ts": 1704067200000 + i, "price": "1"}
    kind = i % 12
    if kind == 0:
        return rng.randbytes(rng.randint(1, 300))  # mostly invalid UTF-8 / not JSON
    if kind == 1:
        return b"x" * (5000 + rng.randint(0, 100_000))
    if kind == 2:
        return json.dumps({**good, "price": rng.choice([None, [], {}, True, "x"])})
    if kind == 3:
        return b'{"symbol":"BTC","ts":1704067200000,"price":%s}' % rng.choice(
            [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-5", b"0"]
        )
    if kind == 4:
        return json.dumps({**good, "price": str(10 ** rng.randint(13, 300))})
    if kind == 5:
        return json.dumps({**good, "ts": int(NOW * 1000) + 10_000 + rng.randint(0, 10**12)})
    if kind == 6:
        return json.dumps({**good, "volume": -rng.random() - 0.1})
    if kind == 7:
        return json.dumps({**good, "symbol": f"X{rng.random()}" * 5})
    if kind == 8:
        return json.dumps({**good, "bid": "2", "ask": "1"})
    if kind == 9:
        return json.dumps([good])
    if kind == 10:
        return rng.choice([None, 42, 1.5, object(), ["a"]])
    return json.dumps({**good, "symbol": f"U{i}"})  # not on the whitelist


def test_ten_thousand_hostile_frames_are_all_rejected_in_bounded_memory() -> None:
    rng = random.Random(7)
    cleaner = DataCleaner(["BTC"], clock=clock)
    logger = logging.getLogger("sigma.feeds.cleaner")
    logger.disabled = True  # the records themselves are checked above; keep the test quick
    try:
        for i in range(1000):  # warm up caches (re, json, Decimal contexts) before measuring
            cleaner.clean(_hostile(rng, i))
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(10_000):
            assert cleaner.clean(_hostile(rng, i)) is None
        growth = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        logger.disabled = False
    assert cleaner.accepted == 0
    assert cleaner.dropped == 11_000
    assert set(cleaner.drops) >= {
        "utf8", "json", "oversized", "type", "price", "too_large", "future", "volume",
        "symbol", "crossed", "not_object", "unknown_symbol",
    }  # fmt: skip
    assert growth < 64 * 1024, growth
