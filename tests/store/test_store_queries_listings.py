"""The listing query services (logs, reports, simulation runs, market data) on SQLite and
PostgreSQL: their filters, windows, order and pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from sigma.store.models import (
    ActionLog,
    AlertLog,
    BarRecord,
    FillRecord,
    OrderRecord,
    PerformanceReport,
    SimOrder,
    SimRun,
    TrendData,
)
from sigma.store.queries import logs, market, reports, sim

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_alerts_by_last_sighting_and_filters(session: Session) -> None:
    for i, (severity, source) in enumerate([("info", "feed"), ("error", "bot"), ("error", "feed")]):
        session.add(
            AlertLog(
                ts=T0,
                last_seen=T0 + i * MINUTE,
                severity=severity,
                source=source,
                message=f"m{i}",
            )
        )
    session.flush()
    assert [a.message for a in logs.alerts(session)] == ["m2", "m1", "m0"]
    assert [a.message for a in logs.alerts(session, severity="error", source="feed")] == ["m2"]
    window = logs.alerts(session, since=T0 + MINUTE, until=T0 + 2 * MINUTE)
    assert [a.message for a in window] == ["m1"]
    assert [a.message for a in logs.alerts(session, limit=1, offset=1)] == ["m1"]


def test_actions_newest_first_and_filters(session: Session) -> None:
    for i, (strategy, symbol, action) in enumerate(
        [("a", "BTC", "entry"), ("b", "BTC", "exit"), ("a", "ETH", "entry")]
    ):
        session.add(
            ActionLog(
                ts=T0 + i * MINUTE, source="bot", action=action, strategy=strategy, symbol=symbol
            )
        )
    session.flush()
    assert [a.ts for a in logs.actions(session)] == [T0 + 2 * MINUTE, T0 + MINUTE, T0]
    picked = logs.actions(session, strategy="a", symbol="BTC", action="entry", until=T0 + MINUTE)
    assert [(a.strategy, a.symbol) for a in picked] == [("a", "BTC")]


def test_reports_by_period_end_and_filters(session: Session) -> None:
    for i, (kind, strategy) in enumerate([("weekly", "a"), ("daily", "a"), ("weekly", "b")]):
        session.add(
            PerformanceReport(
                kind=kind,
                strategy=strategy,
                period_start=T0,
                period_end=T0 + i * MINUTE,
                stats={"i": i},
            )
        )
    session.flush()
    assert [r.stats["i"] for r in reports.reports(session)] == [2, 1, 0]
    assert [r.stats["i"] for r in reports.reports(session, kind="weekly", strategy="a")] == [0]
    assert [r.stats["i"] for r in reports.reports(session, since=T0 + MINUTE, limit=1)] == [2]
    first = reports.reports(session, offset=2)[0]
    assert reports.report(session, first.id) is first
    assert reports.report(session, first.id + 100) is None


def test_sim_runs_and_their_orders(session: Session) -> None:
    runs = [
        SimRun(strategy=s, symbol=y, started_at=T0 + i * MINUTE, initial_cash=Decimal(1000))
        for i, (s, y) in enumerate([("a", "BTC"), ("b", "BTC"), ("a", "ETH")])
    ]
    session.add_all(runs)
    session.flush()
    for i in range(3):
        session.add(
            SimOrder(
                sim_run_id=runs[0].id,
                client_order_id=f"o{i}",
                ts=T0 + (2 - i) * MINUTE,
                symbol="BTC",
                side="buy",
                qty=Decimal(1),
            )
        )
    session.flush()
    assert [r.id for r in sim.runs(session)] == [runs[2].id, runs[1].id, runs[0].id]
    assert [r.id for r in sim.runs(session, strategy="a", symbol="BTC")] == [runs[0].id]
    window = sim.runs(session, since=T0 + MINUTE, until=T0 + 2 * MINUTE, limit=5, offset=0)
    assert [r.id for r in window] == [runs[1].id]
    assert sim.run(session, runs[1].id) is runs[1]
    placed = sim.run_orders(session, runs[0].id, limit=2, offset=0)
    assert [o.client_order_id for o in placed] == ["o2", "o1"]
    assert sim.run_orders(session, runs[1].id, limit=10, offset=0) == []


def _bar(ts: datetime, close: int, timeframe: str = "1m") -> BarRecord:
    price = Decimal(close)
    return BarRecord(
        symbol="BTC", timeframe=timeframe, ts=ts, open=price, high=price, low=price, close=price
    )


def test_latest_bars_oldest_first_in_the_window(session: Session) -> None:
    session.add_all([_bar(T0 + i * MINUTE, 100 + i) for i in range(5)] + [_bar(T0, 1, "5m")])
    session.flush()
    assert [b.close for b in market.latest_bars(session, "BTC", "1m", 2)] == [103, 104]
    window = market.latest_bars(session, "BTC", "1m", 10, since=T0 + MINUTE, until=T0 + 3 * MINUTE)
    assert [b.close for b in window] == [101, 102]
    assert market.latest_bars(session, "ETH", "1m", 10) == []


def test_trends_and_the_latest_per_symbol_and_timeframe(session: Session) -> None:
    readings = [
        ("BTC", "1m", 0, "up"),
        ("BTC", "1m", 1, "down"),
        ("BTC", "1h", 0, "flat"),
        ("ETH", "1m", 0, "up"),
    ]
    for symbol, timeframe, minutes, trend in readings:
        session.add(
            TrendData(symbol=symbol, timeframe=timeframe, ts=T0 + minutes * MINUTE, trend=trend)
        )
    session.flush()
    assert [t.trend for t in market.trends(session, "BTC")] == ["down", "flat", "up"]
    assert [t.trend for t in market.trends(session, "BTC", timeframe="1m", limit=1)] == ["down"]
    assert [t.trend for t in market.trends(session, "BTC", since=T0 + MINUTE)] == ["down"]
    latest = {(t.symbol, t.timeframe): t.trend for t in market.latest_trends(session)}
    assert latest == {("BTC", "1m"): "down", ("BTC", "1h"): "flat", ("ETH", "1m"): "up"}
    assert [t.trend for t in market.latest_trends(session, "1h")] == ["flat"]


def test_fill_marks_oldest_first_with_their_order(session: Session) -> None:
    fills = [
        ("a", "paper", "buy"),
        ("b", "paper", "sell"),
        ("a", "live", "buy"),
        ("a", "paper", "sell"),
    ]
    for i, (strategy, mode, side) in enumerate(fills):
        order = OrderRecord(
            client_order_id=f"c{i}",
            mode=mode,
            symbol="BTC",
            side=side,
            qty=Decimal(1),
            limit_price=None,
            stop_price=None,
            strategy=strategy,
            avg_fill_price=None,
        )
        session.add(order)
        session.add(FillRecord(order=order, qty=Decimal(1), price=Decimal(100), ts=T0 + i * MINUTE))
    session.flush()
    marks = market.fill_marks(session, "BTC", "paper", T0 + MINUTE, 10)
    assert [(f.client_order_id, side, owner) for f, side, owner in marks] == [
        ("c1", "sell", "b"),
        ("c3", "sell", "a"),
    ]
    mine = market.fill_marks(session, "BTC", "paper", T0, 1, strategy="a")
    assert [f.client_order_id for f, _, _ in mine] == ["c3"]
