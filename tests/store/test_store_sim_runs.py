"""The paper runs as the SimRunner writes them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.domain import Fill, Order, OrderStatus, OrderType, Side
from sigma.store.models import SimOrder, SimRun
from sigma.store.sim_runs import (
    add_orders,
    finish_run,
    last_account,
    open_run,
    rate_sim_run,
)

D = Decimal
TS = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_a_finished_run_carries_its_account_to_the_next(session: Session) -> None:
    assert last_account(session, "sma", "BTC") is None
    run_id = open_run(session, "sma", "BTC", {"fast": 5, "k": D("0.5")}, D("1000"))
    session.commit()
    # A running run has no account to carry on yet.
    assert last_account(session, "sma", "BTC") is None

    account = {"cash": "990.5", "fees_paid": "0.5", "pending": []}
    finish_run(
        session, run_id, final_equity=D("1010.25"), stats={"sharpe": D("1.5")}, account=account
    )
    session.commit()

    last = last_account(session, "sma", "BTC")
    assert last is not None
    assert (last.account, last.equity) == (account, D("1010.25"))
    assert last.ended_at.tzinfo is UTC
    run = session.get(SimRun, run_id)
    assert run is not None
    assert (run.status, run.params, run.stats) == (
        "finished",
        {"fast": 5, "k": "0.5"},
        {"sharpe": "1.5"},
    )
    assert last_account(session, "sma", "ETH") is None


def test_orders_are_stored_with_their_fills(session: Session) -> None:
    run_id = open_run(session, "sma", "BTC", {}, D("1000"))
    filled = Order(
        "BTC", Side.BUY, qty=D("2"), strategy="sma", created_at=TS, status=OrderStatus.FILLED
    )
    fill = Fill(filled.client_order_id, "BTC", Side.BUY, D("1.5"), D("101.25"), D("0.1"), TS)
    cancelled = Order(
        "BTC",
        Side.SELL,
        type=OrderType.LIMIT,
        qty=D("1"),
        limit_price=D("120"),
        created_at=TS,
        status=OrderStatus.CANCELLED,
    )
    add_orders(session, [(run_id, filled, fill), (run_id, cancelled, None)])
    session.commit()

    rows = session.scalars(select(SimOrder).order_by(SimOrder.id)).all()
    assert [(r.side, r.type, r.qty, r.status, r.fill_price, r.fee) for r in rows] == [
        ("buy", "market", D("1.5"), "filled", D("101.25"), D("0.1")),
        ("sell", "limit", D("1"), "cancelled", None, D("0")),
    ]
    assert {r.sim_run_id for r in rows} == {run_id}


def test_a_rating_is_one_to_five_on_a_run_that_exists(session: Session) -> None:
    run_id = open_run(session, "sma", "BTC", {}, D("1000"))
    rate_sim_run(session, run_id, 4, "steady")
    session.commit()
    run = session.get(SimRun, run_id)
    assert run is not None and (run.rating, run.comment) == (4, "steady")
    with pytest.raises(ValueError, match="1..5"):
        rate_sim_run(session, run_id, 6)
    with pytest.raises(KeyError):
        rate_sim_run(session, run_id + 1, 3)
