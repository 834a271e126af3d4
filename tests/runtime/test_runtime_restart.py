"""A restart continues from the store: the live pipeline run, stopped and started again
stores the rows one uninterrupted run stores (which are the backtest's on the same prices);
a tripped breaker stays tripped; the built-in market goes on at the wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import delete as sa_delete
from sqlalchemy import select

from sigma.bootstrap import App
from sigma.domain import Bar, Order, OrderType, Side, Tick
from sigma.engine.live import MAX_BARS
from sigma.feeds.live_market import LiveMarket
from sigma.risk.limits import AccountState, RiskManager
from sigma.runtime.market import MARKET_BARS
from sigma.runtime.restore import market_start
from sigma.runtime.services import Services, StartupError
from sigma.store.bars import read_bars, upsert_bars
from sigma.store.models import BarRecord, OrderRecord, RiskStateRecord, TickRecord
from sigma.store.restart import StoredPrice, booked_accounts, last_prices
from tests.runtime.pipeline_helpers import (
    CASH,
    SYMBOL,
    Outcome,
    assert_matches_backtest,
    bars,
    make_app,
    run_pipeline,
    running,
)

SPLIT = 205  # both strategies hold a position here (sma_cross long, rsi_reversion short)
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def store_bars(app: App, frame: pd.DataFrame) -> None:
    """What the recorder keeps of the bars the first run closed."""
    with app.sessions.begin() as s:
        upsert_bars(s, SYMBOL, "1m", frame)


def stored(outcome: Outcome) -> tuple[list[tuple[Any, ...]], ...]:
    """The decisions (with the bar they were made on), the ledger and the positions, without
    what differs between two runs of the same prices (ids, client order ids, booking times);
    the sequence of fills is compared with the backtest's by `assert_matches_backtest`."""
    decisions = [(o.strategy, o.side, o.type, o.qty, o.decided_at) for o in outcome.orders]
    ledger = [(e.strategy, e.cash_delta, e.fee, e.realized_pnl, e.reason) for e in outcome.ledger]
    held = outcome.positions.values()
    positions = [(p.strategy, p.qty, p.avg_price, p.realized_pnl) for p in held]
    # Sorted: orders of one bar share their time and the rows of a run their order.
    return tuple(sorted(rows) for rows in (decisions, ledger, positions))


async def test_a_restarted_pipeline_stores_what_one_uninterrupted_run_stores(
    db_url: str, tmp_path: Path
) -> None:
    frame = bars(400)
    uninterrupted = make_app(f"sqlite:///{tmp_path / 'uninterrupted.db'}")
    reference = await run_pipeline(uninterrupted, frame)
    uninterrupted.close()
    first = make_app(db_url)
    # Ticks up to the first of bar SPLIT: bars 0 .. SPLIT-1 close and are decided on; the
    # ticks of bar SPLIT are lost with the process, as a partial bar is.
    await run_pipeline(first, frame.iloc[: SPLIT + 1])
    store_bars(first, frame.iloc[:SPLIT])
    first.close()
    check_restored(db_url, frame)

    second = make_app(db_url)
    outcome = await run_pipeline(second, frame.iloc[SPLIT:])
    # One uninterrupted run stores the backtest's rows (test_runtime_pipeline): so do these.
    assert assert_matches_backtest(outcome, second, frame) >= 20
    assert stored(outcome) == stored(reference)
    bot = outcome.system.bot
    assert bot is not None
    held = {p.strategy: p.qty for p in outcome.positions.values()}
    for (strategy, symbol), engine in bot.engines.items():
        # The strategy's account is the booked one.
        cash = CASH + sum(
            (e.cash_delta for e in outcome.ledger if e.strategy == strategy), start=Decimal(0)
        )
        assert engine.portfolio.qty(symbol) == held.get(strategy, 0), strategy
        assert engine.portfolio.cash == cash, strategy
    second.close()


def check_restored(db_url: str, frame: pd.DataFrame) -> None:
    """A bot built now holds what was booked (without the restore it would start flat and
    buy again what it holds), has the stored bars as history and trades no bar twice."""
    app = make_app(db_url)
    system = Services(app, ("bot",))
    engine = system._bot().engines[("sma_cross", SYMBOL)]
    assert engine.portfolio.qty(SYMBOL) == 96
    with app.sessions() as s:
        booked = booked_accounts(s, "paper")[("sma_cross", SYMBOL)]
    assert engine.portfolio.cash == CASH + booked.cash_moved
    assert engine.portfolio.fees_paid == booked.fees > 0
    assert engine.portfolio.position(SYMBOL).realized_pnl == booked.realized_pnl - booked.fees
    assert len(engine.data) == SPLIT and engine.data.cursor.i == SPLIT - 1
    last = frame.index[SPLIT - 1].to_pydatetime()
    price = Decimal(100)
    engine.on_live_bar(Bar(SYMBOL, last, price, price, price, price, Decimal(1)), price)
    assert len(engine.data) == SPLIT
    assert system.risk_state is not None
    system.risk_state.close()
    app.close()


def risk_check(risk: RiskManager, equity: Decimal, at: datetime) -> str:
    """The reason a buy of 1 at 100 is refused for an account at `equity` ("" if accepted)."""
    order = Order(SYMBOL, Side.BUY, qty=Decimal(1), strategy="sma_cross")
    account = AccountState(f"sma_cross:{SYMBOL}", equity, Decimal(0), 0, at)
    return risk.check(order, Decimal(100), account).reason


async def test_a_tripped_drawdown_breaker_stays_tripped_after_a_restart(db_url: str) -> None:
    app = make_app(db_url, max_drawdown=Decimal("0.1"))
    system = Services(app, ("bot",))
    risk = system._bot().risk
    assert isinstance(risk, RiskManager)
    assert risk_check(risk, Decimal(10_000), T0) == ""
    assert "drawdown" in risk_check(risk, Decimal(8_000), T0)
    assert system.risk_state is not None
    system.risk_state.close()

    # A new process, days later, with equity back up: still halted until an operator resets.
    again = Services(make_app(db_url, max_drawdown=Decimal("0.1")), ("bot",))
    restored = again._bot().risk
    assert isinstance(restored, RiskManager)
    assert "drawdown" in risk_check(restored, Decimal(9_500), T0 + timedelta(days=3))
    restored.reset(f"sma_cross:{SYMBOL}")
    assert again.risk_state is not None
    again.risk_state.close()
    with app.sessions() as s:
        assert s.scalars(select(RiskStateRecord)).all() == []
    app.close()


async def test_daily_loss_marks_are_kept_per_mode(db_url: str) -> None:
    app = make_app(db_url, max_daily_loss=Decimal(500))
    system = Services(app, ("bot",))
    risk = system._bot().risk
    assert isinstance(risk, RiskManager)
    assert risk_check(risk, Decimal(10_000), T0) == ""
    assert "daily loss" in risk_check(risk, Decimal(9_400), T0)
    assert system.risk_state is not None
    system.risk_state.close()
    with app.sessions() as s:
        (row,) = s.scalars(select(RiskStateRecord)).all()
    assert (row.mode, row.day, row.day_start, row.peak) == (
        "paper",
        date(2026, 3, 2),
        Decimal(10_000),
        Decimal(10_000),
    )
    assert row.tripped.startswith("daily loss")
    # The live account of the same strategy has marks of its own.
    live = Services(make_app(db_url, mode="live", max_daily_loss=Decimal(500)), ("bot",))
    live_risk = live._bot().risk
    assert isinstance(live_risk, RiskManager)
    assert risk_check(live_risk, Decimal(9_400), T0) == ""
    assert live.risk_state is not None
    live.risk_state.close()
    app.close()


def store_order(app: App, coid: str, kind: str, status: str = "new") -> None:
    with app.sessions.begin() as s:
        s.add(
            OrderRecord(
                client_order_id=coid,
                mode="paper",
                symbol=SYMBOL,
                side="buy",
                type=kind,
                qty=Decimal(5),
                limit_price=Decimal(90) if kind == "limit" else None,
                status=status,
                strategy="sma_cross",
                decided_at=T0,
            )
        )


async def test_open_orders_are_the_engines_again(db_url: str) -> None:
    app = make_app(db_url)
    store_bars(app, bars(30))
    store_order(app, "resting-1", "limit")
    store_order(app, "market-1", "market")
    store_order(app, "done-1", "limit", status="filled")
    system = Services(app, ("bot",))
    bot = system._bot()
    engine = bot.engines[("sma_cross", SYMBOL)]
    assert list(engine.resting) == ["resting-1"]
    assert engine.resting["resting-1"].type is OrderType.LIMIT
    assert engine.resting["resting-1"].created_at == T0  # the market time it was decided at
    assert list(engine.inflight) == ["market-1"]
    assert engine.position_qty(SYMBOL) == 5  # the market order counts as in flight
    engine.cancel_pending(SYMBOL)
    assert [o.client_order_id for _, o in bot._cancels] == ["resting-1"]
    assert bot.engines[("rsi_reversion", SYMBOL)].resting == {}
    assert system.risk_state is not None
    system.risk_state.close()
    app.close()


def test_warm_up_keeps_the_latest_bars_of_the_window(db_url: str) -> None:
    app = make_app(db_url)
    frame = bars(40)
    store_bars(app, frame)
    with app.sessions() as s:
        latest = read_bars(s, SYMBOL, "1m", last=10)
    pd.testing.assert_frame_equal(
        latest, frame.iloc[-10:], check_freq=False, check_names=False, check_index_type=False
    )
    assert MAX_BARS >= 1000
    app.close()


def test_the_market_starts_with_history_or_after_what_is_stored(db_url: str) -> None:
    app = make_app(db_url)
    minute = timedelta(minutes=1)
    now = T0 + timedelta(seconds=42)
    # Nothing stored: `history` bars that end at the current minute.
    assert market_start(app.sessions, [SYMBOL], minute, 100, now=now) == T0 - 100 * minute
    # A restart goes on after the last stored bar, never replaying a traded timestamp.
    stored = bars(5).set_axis(pd.date_range(T0, periods=5, freq="1min", name="ts"))
    store_bars(app, stored)
    assert market_start(app.sessions, [SYMBOL], minute, 100, now=now) == T0 + 5 * minute
    with app.sessions.begin() as s:
        s.add(TickRecord(symbol=SYMBOL, ts=T0 + timedelta(minutes=7, seconds=3), price=1))
    assert market_start(app.sessions, [SYMBOL], minute, 100, now=now) == T0 + 8 * minute
    # Other symbols' prices do not move it.
    assert market_start(app.sessions, ["OTHER"], minute, 100, now=now) == T0 - 100 * minute
    app.close()


async def test_the_built_in_market_goes_on_after_what_was_recorded(db_url: str) -> None:
    app = make_app(db_url, market_history_bars=120, bar_seconds=300)

    async def first_tick() -> Tick:
        async with running(Services(app, ("market",))) as system:
            assert system.market is not None
            source = system.market.source
            assert isinstance(source, LiveMarket)
            tick = next(iter(source.ticks()))
            assert source.live_from <= tick.ts < source.live_from + timedelta(minutes=1, seconds=5)
            return tick

    def stored(timeframe: str) -> pd.DataFrame:
        with app.sessions() as s:
            return read_bars(s, SYMBOL, timeframe)

    before = datetime.now(UTC)
    fresh = await first_tick()
    after = datetime.now(UTC)
    # In wall-clock time, after two hours of history stored as 1-minute bars (and the whole
    # 5-minute bars they make) that end at the current minute.
    assert before - timedelta(seconds=5) <= fresh.ts <= after + timedelta(seconds=5)
    history = stored("1m")
    assert len(history) == 120
    # The last stored bar is the minute before the live one; the first tick comes within the
    # live minute and its 5 s tick step (a start at hh:mm:59 ticks at the next minute).
    assert fresh.ts - history.index[-1] < pd.Timedelta("2min") + pd.Timedelta(seconds=5)
    fives = stored("5m")
    assert 22 <= len(fives) <= 24 and (fives.index.minute % 5 == 0).all()
    assert fives.index[-1] + pd.Timedelta("5min") <= history.index[-1] + pd.Timedelta("1min")
    # What the recorder kept of the first run ends an hour ago: the restart fills the hour
    # from that price and goes on at the wall clock.
    hour_ago = pd.Timestamp(fresh.ts).floor("1min").to_pydatetime() - timedelta(hours=1)
    with app.sessions.begin() as s:
        s.execute(sa_delete(BarRecord).where(BarRecord.ts > hour_ago - timedelta(minutes=5)))
        s.add(TickRecord(symbol=SYMBOL, ts=hour_ago + timedelta(seconds=5), price=Decimal("77.7")))
    again = await first_tick()
    assert again.ts >= fresh.ts
    refilled = stored("1m")
    gap = refilled[refilled.index > pd.Timestamp(hour_ago)]
    assert gap.index[0] == pd.Timestamp(hour_ago) + pd.Timedelta("1min")
    assert gap["open"].iloc[0] == 77.7
    assert not refilled.index.duplicated().any()
    app.close()


async def test_an_accelerated_built_in_market_plays_history_up_to_the_present(
    db_url: str,
) -> None:
    app = make_app(db_url, feed_speed=60)
    async with running(Services(app, ("market",))) as system:
        assert system.market is not None
        first = next(iter(system.market.source.ticks()))
    minute = pd.Timestamp.now(tz="UTC").floor("1min").to_pydatetime()
    assert first.ts <= minute - (MARKET_BARS - 1) * timedelta(minutes=1)
    with app.sessions() as s:
        assert read_bars(s, SYMBOL, "1m").empty  # nothing stored ahead of the replay
    app.close()


def test_the_price_filter_judges_the_first_tick_against_the_last_stored_price(
    db_url: str,
) -> None:
    app = make_app(db_url)
    minute = timedelta(minutes=1)
    stored_bars = bars(3).set_axis(pd.date_range(T0, periods=3, freq="1min", name="ts"))
    store_bars(app, stored_bars)
    with app.sessions.begin() as s:  # an older tick: the newest bar's close is later
        s.add(TickRecord(symbol=SYMBOL, ts=T0 - minute, price=Decimal("90")))
    with app.sessions() as s:
        assert last_prices(s, [SYMBOL, "OTHER"], "1m") == {
            SYMBOL: StoredPrice(Decimal(str(stored_bars["close"].iloc[-1])), T0 + 2 * minute)
        }
        assert last_prices(s, [SYMBOL], "1h") == {SYMBOL: StoredPrice(Decimal("90"), T0 - minute)}
    with app.sessions.begin() as s:
        s.add(TickRecord(symbol=SYMBOL, ts=T0 + 5 * minute, seq=0, price=Decimal("101.5")))
        s.add(TickRecord(symbol=SYMBOL, ts=T0 + 5 * minute, seq=1, price=Decimal("101.75")))
    system = Services(app, ("prices",))
    client = system._price_source("ws://127.0.0.1:1")
    detector = client.detector
    assert detector is not None and detector.reference is not None
    # The newest tick wins.
    assert detector.reference(SYMBOL) == StoredPrice(Decimal("101.75"), T0 + 5 * minute)
    assert client.health is system.feed_health
    # A first tick far from the stored price is rejected.
    assert not detector.check(Tick.of(SYMBOL, T0 + 6 * minute, 1e6)).ok
    app.close()


async def test_only_the_accelerated_built_in_market_has_no_stored_reference(db_url: str) -> None:
    """The wall-clock market goes on from the last stored price, which is then its first
    tick's reference; the accelerated one replays the same seeded prices after a restart."""
    for speed, referenced in ((1.0, True), (60.0, False)):
        app = make_app(db_url, feed_speed=speed, market_history_bars=0)
        with app.sessions.begin() as s:
            s.add(TickRecord(symbol=SYMBOL, ts=T0, price=Decimal("1")))
        async with running(Services(app, ("market",))) as system:
            assert system.market is not None
            client = system._price_source(system.market.url)
            assert client.detector is not None
            assert (client.detector.reference is not None) is referenced
        with app.sessions.begin() as s:
            s.execute(sa_delete(TickRecord))
        app.close()


def test_a_restart_on_a_damaged_database_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    """The store cut short (a copy that never finished): the system does not start, says
    which file and why, and leaves the file as it was for whoever restores it."""
    path = tmp_path / "sigma.db"
    first = make_app(f"sqlite:///{path}")
    first.db  # noqa: B018 - a first run's store
    first.close()
    path.write_bytes(path.read_bytes()[:8192])
    app = make_app(f"sqlite:///{path}")
    with pytest.raises(StartupError) as raised:
        Services(app, ("worker",))
    assert str(raised.value).startswith(
        f"SQLite database {path}: database disk image is malformed (SQLITE_CORRUPT); restore"
    )
    assert path.stat().st_size == 8192
    app.close()


def test_a_start_without_its_database_server_is_refused_naming_it() -> None:
    """No PostgreSQL listens where the settings say: the system does not start, and says
    which server (without its password) and the driver's reason."""
    app = make_app("postgresql://sigma:secret@127.0.0.1:1/sigma")
    with pytest.raises(StartupError) as raised:
        Services(app, ("worker",))
    assert str(raised.value).startswith(
        "the database postgresql+psycopg://sigma:***@127.0.0.1:1/sigma is unavailable: "
        "OperationalError: connection failed: connection to server at "
    )
    assert "Connection refused" in str(raised.value) and "secret" not in str(raised.value)
    app.close()


def test_an_error_of_the_database_that_is_not_an_outage_is_raised_as_it_is(
    tmp_path: Path,
) -> None:
    """A start on a database newer than this SIGMA (a revision it does not ship) is no
    outage: the migration's own error, unchanged."""
    path = tmp_path / "sigma.db"
    first = make_app(f"sqlite:///{path}")
    with first.db.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'from_the_future'")
    first.close()
    app = make_app(f"sqlite:///{path}")
    with pytest.raises(Exception, match="from_the_future") as raised:
        Services(app, ("worker",))
    assert not isinstance(raised.value, StartupError)
    app.close()
