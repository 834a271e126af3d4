"""Constraints and relations of the tables, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigma.store.models import (
    ActionLog,
    AlertLog,
    Base,
    FillRecord,
    Instrument,
    JobRun,
    LedgerEntry,
    OrderRecord,
    PerformanceReport,
    PositionRecord,
    SimOrder,
    SimRun,
    TickRecord,
    TrendData,
    User,
    UserPref,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _order(coid: str = "coid-1", **kw: object) -> OrderRecord:
    fields: dict[str, object] = {
        "client_order_id": coid,
        "mode": "paper",
        "symbol": "BTC/USDT",
        "side": "buy",
        "qty": Decimal("0.5"),
    } | kw
    return OrderRecord(**fields)


def test_duplicate_client_order_id_is_rejected(session: Session) -> None:
    session.add(_order("dup"))
    session.commit()
    session.add(_order("dup", side="sell"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(OrderRecord)) == 1


def test_order_and_fills_written_together(session: Session) -> None:
    order = _order("o-1", type="limit", limit_price=Decimal("60000.5"))
    order.fills = [
        FillRecord(qty=Decimal("0.2"), price=Decimal("60000.5"), fee=Decimal("0.012"), ts=T0),
        FillRecord(qty=Decimal("0.3"), price=Decimal("60000.4"), ts=T0, exchange_fill_id="x-9"),
    ]
    order.filled_qty = Decimal("0.5")
    order.status = "filled"
    session.add(order)
    session.add(
        LedgerEntry(
            mode="paper",
            cash_delta=Decimal("-30000.22"),
            fee=Decimal("0.012"),
            reason="fill",
            client_order_id="o-1",
        )
    )
    session.commit()
    session.expunge_all()
    back = session.scalars(select(OrderRecord).where(OrderRecord.client_order_id == "o-1")).one()
    assert [f.qty for f in back.fills] == [Decimal("0.2"), Decimal("0.3")]
    assert back.fills[1].fee == 0
    assert back.created_at.tzinfo is UTC and back.updated_at >= back.created_at
    assert back.fills[0].order is back


def test_fill_for_unknown_order_is_rejected(session: Session) -> None:
    session.add(FillRecord(client_order_id="nope", qty=Decimal(1), price=Decimal(1), ts=T0))
    with pytest.raises(IntegrityError):
        session.commit()


def test_exchange_fill_id_unique_but_nullable(session: Session) -> None:
    session.add(_order("o-2"))
    for fill_id in (None, None, "ex-1"):
        session.add(
            FillRecord(
                client_order_id="o-2",
                qty=Decimal(1),
                price=Decimal(1),
                ts=T0,
                exchange_fill_id=fill_id,
            )
        )
    session.commit()
    session.add(
        FillRecord(
            client_order_id="o-2", qty=Decimal(1), price=Decimal(1), ts=T0, exchange_fill_id="ex-1"
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize(
    "bad", [{"side": "hold"}, {"mode": "demo"}, {"status": "lost"}, {"type": "iceberg"}]
)
def test_order_enumerations_are_checked(session: Session, bad: dict[str, str]) -> None:
    session.add(_order("bad", **bad))
    with pytest.raises(IntegrityError):
        session.commit()


def test_one_position_per_symbol_strategy_mode(session: Session) -> None:
    session.add(PositionRecord(symbol="ETH", strategy="s", mode="paper", qty=Decimal("2")))
    session.add(PositionRecord(symbol="ETH", strategy="s", mode="live"))
    session.commit()
    assert session.scalars(select(PositionRecord.qty).order_by(PositionRecord.mode)).all() == [
        Decimal(0),
        Decimal(2),
    ]
    session.add(PositionRecord(symbol="ETH", strategy="s", mode="paper"))
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize(("rating", "ok"), [(1, True), (5, True), (0, False), (6, False)])
def test_sim_run_rating_is_1_to_5(session: Session, rating: int, ok: bool) -> None:
    session.add(SimRun(strategy="s", symbol="X", initial_cash=Decimal(100), rating=rating))
    if ok:
        session.commit()
    else:
        with pytest.raises(IntegrityError):
            session.commit()


def test_deleting_a_sim_run_deletes_its_orders(session: Session) -> None:
    run = SimRun(strategy="s", symbol="X", initial_cash=Decimal(100), comment="fine")
    run.orders = [
        SimOrder(client_order_id=f"c{i}", ts=T0, symbol="X", side="buy", qty=Decimal(1))
        for i in range(3)
    ]
    session.add(run)
    session.commit()
    session.delete(run)
    session.commit()
    assert session.scalar(select(func.count()).select_from(SimOrder)) == 0


def test_user_prefs_hold_any_json_and_follow_the_user(session: Session) -> None:
    user = User(username="ops", password_hash="argon2$...", role="admin")
    user.prefs = [
        UserPref(key="theme", value="dark"),
        UserPref(key="watchlist", value=["BTC", "ETH"]),
        UserPref(key="layout", value={"cols": 3, "compact": True}),
    ]
    session.add(user)
    session.commit()
    session.expunge_all()
    back = session.scalars(select(User)).one()
    assert {p.key: p.value for p in back.prefs} == {
        "theme": "dark",
        "watchlist": ["BTC", "ETH"],
        "layout": {"cols": 3, "compact": True},
    }
    assert back.active and back.last_login is None
    session.add(User(username="ops", password_hash="x"))
    with pytest.raises(IntegrityError):
        session.commit()


def test_ticks_sharing_a_timestamp_use_seq(session: Session) -> None:
    session.add(TickRecord(symbol="T", ts=T0, price=Decimal("1.1")))
    session.add(
        TickRecord(
            symbol="T", ts=T0, seq=1, price=Decimal("1.2"), flagged=True, flag_reason="spike"
        )
    )
    session.commit()
    rows = session.scalars(select(TickRecord).order_by(TickRecord.seq)).all()
    assert [(r.seq, r.flagged, r.flag_reason) for r in rows] == [
        (0, False, None),
        (1, True, "spike"),
    ]
    session.add(TickRecord(symbol="T", ts=T0, price=Decimal("9")))
    with pytest.raises(IntegrityError):
        session.commit()


def test_time_series_primary_keys_lead_with_symbol_and_include_ts(engine: Engine) -> None:
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("ticks")["constrained_columns"] == ["symbol", "ts", "seq"]
    assert inspector.get_pk_constraint("bars")["constrained_columns"] == [
        "symbol",
        "timeframe",
        "ts",
    ]


def test_operational_tables_accept_rows(session: Session) -> None:
    session.add_all(
        [
            Instrument(symbol="BTC/USDT", base="BTC", quote="USDT", tick_size=Decimal("0.01")),
            TrendData(symbol="BTC/USDT", timeframe="1h", ts=T0, trend="up", strength=0.7),
            PerformanceReport(
                kind="weekly", period_start=T0, period_end=T0 + timedelta(days=7), stats={"n": 1}
            ),
            AlertLog(severity="warning", source="risk", message="drawdown 5%", dedupe_key="dd"),
            ActionLog(source="bot", action="skip_order", details={"why": "kill switch"}),
            JobRun(job_id="weekly_report", outcome="error", error="Traceback ..."),
        ]
    )
    session.commit()
    session.expunge_all()
    assert session.scalars(select(TrendData.data)).one() == {}
    assert session.scalars(select(ActionLog.details)).one() == {"why": "kill switch"}
    job = session.scalars(select(JobRun)).one()
    assert job.started_at.tzinfo is UTC and job.ended_at is None
    assert session.scalars(select(Instrument.active)).one() is True


def test_every_table_is_migrated(engine: Engine) -> None:
    expected = {
        "instruments", "ticks", "bars", "orders", "fills", "positions", "ledger", "sim_runs",
        "sim_orders", "strategy_param", "strategy_param_history", "bt_summary", "bt_trades",
        "trend_data", "performance_reports", "alert_log", "users", "user_prefs", "action_log",
        "job_runs", "control_flags",
    }  # fmt: skip
    # The required tables exist, and every modelled table (later ones too) is in the database.
    assert expected <= set(Base.metadata.tables)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
