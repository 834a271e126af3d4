"""The query services behind the bot's controls and the strategies page, on SQLite and
PostgreSQL: parameter sets with their current author, holdings per pair, an order's owner,
and the database ping of the health check."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from sigma.store.models import OrderRecord, PositionRecord, StrategyParam
from sigma.store.params import deactivate_params, set_params
from sigma.store.queries import health, params, trading


def test_active_sets_carry_the_change_that_made_them(session: Session) -> None:
    set_params(session, "sma", "BTC", {"fast": 5}, "first", "ann")
    set_params(session, "sma", "BTC", {"fast": 7}, "better", "bob")
    set_params(session, "rsi", "ETH", {"period": 14}, "", "cli")
    set_params(session, "sma", "ETH", {"fast": 3}, "", "cli")
    deactivate_params(session, "sma", "ETH")
    # A set stored without its history row (written before changes were recorded).
    session.add(StrategyParam(strategy="old", symbol="BTC", params={"n": 1}, version=3))
    session.flush()
    active = [
        (row.strategy, row.symbol, row.version, last.changed_by if last else None)
        for row, last in params.active_sets(session)
    ]
    assert active == [("old", "BTC", 3, None), ("rsi", "ETH", 1, "cli"), ("sma", "BTC", 2, "bob")]
    pairs = params.sets_by_pair(session)
    assert set(pairs) == {("old", "BTC"), ("rsi", "ETH"), ("sma", "BTC"), ("sma", "ETH")}
    authors = params.current_authors(session)
    assert authors[pairs["sma", "BTC"].id] == "bob"
    assert pairs["old", "BTC"].id not in authors


def test_holdings_of_a_mode_and_an_orders_owner(session: Session) -> None:
    for mode, qty in (("paper", "1.5"), ("live", "-2")):
        session.add(PositionRecord(symbol="BTC", strategy="sma", mode=mode, qty=Decimal(qty)))
    session.add(
        OrderRecord(
            client_order_id="c-1",
            mode="paper",
            symbol="BTC",
            side="buy",
            qty=Decimal(1),
            limit_price=None,
            stop_price=None,
            strategy="sma",
            avg_fill_price=None,
        )
    )
    session.flush()
    assert trading.held(session, "paper") == {("sma", "BTC"): Decimal("1.5")}
    assert trading.order_owner(session, "c-1") == ("sma", "BTC", "new")
    assert trading.order_owner(session, "c-2") is None


def test_ping_answers_or_raises(engine: Engine) -> None:
    health.ping(engine)
    unreachable = create_engine("sqlite:////nonexistent-dir/x/sigma.db")
    with pytest.raises(OperationalError):
        health.ping(unreachable)
