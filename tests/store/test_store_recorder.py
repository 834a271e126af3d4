"""MarketRecorder on SQLite and PostgreSQL: every tick and every closed bar reaches `ticks`
and `bars`, in batches and off the caller's thread; a locked table does not hold the caller;
writes are idempotent; TimescaleDB policies as SQL (the extension is absent here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from sigma.domain import Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.ws_server import bar_ticks
from sigma.store.bars import read_bars
from sigma.store.db import session_factory
from sigma.store.models import BarRecord, TickRecord
from sigma.store.recorder import MarketRecorder
from sigma.store.timescale import Policy, apply_policies, policy_statements

MINUTE = timedelta(minutes=1)
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def ticks(n_bars: int = 30, symbol: str = "XYZ") -> list[Tick]:
    frame = generate_bars(n_bars, seed=3, freq="1min", start_price=100.0, start=T0)[0]
    return list(bar_ticks(symbol, frame))


def count(engine: Engine, model: type[TickRecord] | type[BarRecord], **where: str) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_every_tick_and_closed_bar_is_stored_as_the_bar_builder_built_it(engine: Engine) -> None:
    feed = ticks(30)
    recorder = MarketRecorder(engine, (MINUTE, 5 * MINUTE, MINUTE), batch_rows=50)
    assert list(recorder.timeframes) == ["1m", "5m"]
    recorder.start()
    for tick in feed:
        recorder.record(tick)
    assert recorder.close() == 0
    builder = BarBuilder("XYZ", MINUTE)
    expected = [bar for t in feed if (bar := builder.on_tick(t)) is not None]
    assert count(engine, TickRecord) == len(feed) == recorder.ticks
    assert count(engine, BarRecord, timeframe="1m") == len(expected) == 29  # the last is open
    assert count(engine, BarRecord, timeframe="5m") == 5
    assert recorder.totals()["rows_written"] == len(feed) + 29 + 5
    with session_factory(engine)() as session:
        stored = read_bars(session, "XYZ", "1m")
        first = session.scalars(select(TickRecord).order_by(TickRecord.ts).limit(1)).one()
    assert [float(b.close) for b in expected] == stored["close"].tolist()
    assert [b.ts for b in expected] == [ts.to_pydatetime() for ts in stored.index]
    assert (first.symbol, first.ts, first.price) == ("XYZ", feed[0].ts, feed[0].price)


def test_ticks_sharing_a_time_are_numbered_and_a_replay_stores_nothing_twice(
    engine: Engine,
) -> None:
    same = [Tick("A", T0, Decimal(p), Decimal(1)) for p in ("1", "2", "3")]
    later = Tick("A", T0 + 2 * MINUTE, Decimal(4), Decimal(1), bid=Decimal("3.9"))
    for _ in range(2):  # the second run replays the same ticks: nothing new is stored
        recorder = MarketRecorder(engine, (MINUTE,))
        for tick in [*same, later]:
            recorder.record(tick)
        recorder.close()
    with engine.connect() as conn:
        rows = conn.execute(
            select(TickRecord.seq, TickRecord.price, TickRecord.bid).order_by(
                TickRecord.ts, TickRecord.seq
            )
        ).all()
        bars = conn.execute(select(BarRecord.open, BarRecord.close, BarRecord.volume)).all()
    assert [(seq, int(price)) for seq, price, _ in rows] == [(0, 1), (1, 2), (2, 3), (0, 4)]
    assert rows[-1][2] == Decimal("3.9")
    assert bars == [(Decimal(1), Decimal(3), Decimal(3))]


@contextmanager
def table_locked(engine: Engine, table: str) -> Iterator[None]:
    """Another connection holds `table` (SQLite: the whole database) until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        # On SQLite the engine's transactions begin IMMEDIATE: the database is locked.
        with engine.begin() as other:
            if engine.dialect.name == "postgresql":
                other.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            locked.set()
            release.wait(5.0)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10.0)
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_a_locked_table_does_not_hold_the_caller(engine: Engine) -> None:
    feed = ticks(40)
    recorder = MarketRecorder(engine, (MINUTE,), batch_rows=20, flush_interval=0.01)
    recorder.start()
    slowest = 0.0
    with table_locked(engine, "ticks"):
        for tick in feed:
            started = time.perf_counter()
            recorder.record(tick)
            slowest = max(slowest, time.perf_counter() - started)
        time.sleep(0.2)  # the writer is stuck on the lock meanwhile
        assert recorder.writer.pending > 0 and recorder.writer.written == 0
    # Microseconds per tick; a write inline would have waited for the lock (0.2 s and more).
    assert slowest < 0.02
    recorder.close()
    assert count(engine, TickRecord) == len(feed)
    assert count(engine, BarRecord) == 39


def test_bar_lengths_must_be_whole_seconds(engine: Engine) -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        MarketRecorder(engine, (timedelta(seconds=1.5),))
    with pytest.raises(ValueError, match="at least one"):
        MarketRecorder(engine, ())


def test_timescale_policies_as_sql_and_skipped_without_the_extension(engine: Engine) -> None:
    week, month = timedelta(days=7), timedelta(days=30)
    assert policy_statements("ticks", Policy(week, month)) == [
        "SELECT remove_compression_policy('ticks', if_exists => TRUE)",
        "ALTER TABLE ticks SET (timescaledb.compress, timescaledb.compress_segmentby = "
        "'symbol', timescaledb.compress_orderby = 'ts DESC, seq DESC')",
        "SELECT add_compression_policy('ticks', compress_after => INTERVAL '604800 seconds')",
        "SELECT remove_retention_policy('ticks', if_exists => TRUE)",
        "SELECT add_retention_policy('ticks', drop_after => INTERVAL '2592000 seconds')",
    ]
    # Bars kept forever, uncompressed: the old policies go, none is added.
    assert policy_statements("bars", Policy(None, None)) == [
        "SELECT remove_compression_policy('bars', if_exists => TRUE)",
        "SELECT remove_retention_policy('bars', if_exists => TRUE)",
    ]
    assert (
        "compress_segmentby = 'symbol, timeframe'"
        in policy_statements("bars", Policy(week, None))[1]
    )
    with pytest.raises(ValueError, match="not a hypertable"):
        policy_statements("orders", Policy(week, None))
    # Neither SQLite nor this machine's PostgreSQL has the extension: plain tables stay.
    assert apply_policies(engine, {"ticks": Policy(week, month)}) is False
