"""The running bot reads back from the store what the bus did not deliver: the fills of its
open orders it has not booked, and their final statuses (`sigma.runtime.catch_up`); the fills
a restart found booked already are never booked twice. Against Redis stopped and started:
tests/integration/test_integration_restarts.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from sigma.bootstrap import App
from sigma.domain import Side
from sigma.execution.events import FillEvent, OrderStatusEvent
from sigma.runtime.catch_up import FeedbackCatchUp, Unsettled
from sigma.runtime.services import Services
from sigma.store.models import FillRecord, OrderRecord
from tests.runtime.pipeline_helpers import SYMBOL, bars, make_app
from tests.runtime.test_runtime_restart import store_bars, store_order

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
COID = "resting-1"


def store_fill(app: App, qty: int, price: int, minutes: int, status: str, trade: str = "") -> None:
    """A fill of `COID` as the worker books it (`trade`: the venue's execution), and the
    order's status after it."""
    with app.sessions.begin() as s:
        s.add(
            FillRecord(
                client_order_id=COID,
                exchange_fill_id=f"{COID}-{minutes}{trade}",
                qty=Decimal(qty),
                price=Decimal(price),
                fee=Decimal("0.5"),
                ts=T0 + timedelta(minutes=minutes),
            )
        )
        s.execute(
            update(OrderRecord).where(OrderRecord.client_order_id == COID).values(status=status)
        )


def announced(qty: int, price: int, minutes: int, trade: str = "") -> FillEvent:
    """The fill as the worker announces it on the bus (with the venue's execution id)."""
    return FillEvent(
        client_order_id=COID,
        symbol=SYMBOL,
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal("0.5"),
        ts=T0 + timedelta(minutes=minutes),
        strategy="sma_cross",
        fill_id=f"{COID}-{minutes}{trade}",
    )


def restarted_with_a_resting_order(db_url: str) -> tuple[App, Services, FeedbackCatchUp]:
    """A bot restarted with the resting buy `COID` open on record, and its catch-up."""
    app = make_app(db_url)
    store_bars(app, bars(30))
    store_order(app, COID, "limit")
    system = Services(app, ("bot",))
    catch_up = system._bot().catch_up
    assert isinstance(catch_up, FeedbackCatchUp)
    return app, system, catch_up


async def test_what_the_bus_missed_is_booked_once_from_the_store(db_url: str) -> None:
    app = make_app(db_url)
    store_bars(app, bars(30))
    store_order(app, COID, "limit")
    store_fill(app, 2, 90, 0, "partially_filled")  # booked before the restart
    system = Services(app, ("bot",))
    bot = system._bot()
    catch_up = bot.catch_up
    assert isinstance(catch_up, FeedbackCatchUp)
    engine = bot.engines[("sma_cross", SYMBOL)]
    assert list(bot.unsettled) == [COID] and COID in engine.resting

    await catch_up()  # the fill the restart found is in the account already
    assert (catch_up.fills, catch_up.statuses) == (0, 0)
    assert not bot.on_fill(announced(2, 90, 0))  # nor is its late report booked

    store_fill(app, 3, 89, 1, "filled")  # booked while the bus was away
    qty, cash = engine.portfolio.qty(SYMBOL), engine.portfolio.cash
    await catch_up()
    assert (catch_up.fills, catch_up.statuses) == (1, 1)
    assert engine.portfolio.qty(SYMBOL) == qty + 3
    assert engine.portfolio.cash == cash - 3 * 89 - Decimal("0.5")
    assert COID not in engine.resting and list(bot.unsettled) == []

    bot.on_fill(announced(3, 89, 1))  # its report, arriving after all
    assert engine.portfolio.qty(SYMBOL) == qty + 3
    await catch_up()  # nothing is open any more: nothing is read
    assert (catch_up.runs, catch_up.fills) == (3, 1)
    assert system.risk_state is not None
    system.risk_state.close()
    app.close()


async def test_a_final_status_heard_before_its_fills_leaves_them_to_be_read_back(
    db_url: str,
) -> None:
    """Fills and statuses come on two subscriptions, each on a connection of its own: the
    status one may deliver an order's 'filled' while the fills one is reconnecting and has
    lost the fill. The order is still read back when the fills come back, and its fill
    booked (once); the status heard is not applied again."""
    app, system, catch_up = restarted_with_a_resting_order(db_url)
    bot = catch_up.bot
    engine = bot.engines[("sma_cross", SYMBOL)]
    qty = engine.portfolio.qty(SYMBOL)
    store_fill(app, 3, 89, 1, "filled")
    final = OrderStatusEvent(client_order_id=COID, symbol=SYMBOL, status="filled", ts=T0)
    bot.on_status(final)  # heard; its fill was published while the fills channel was down
    assert COID not in engine.resting
    await catch_up()  # the fills subscription is back
    assert (catch_up.fills, catch_up.statuses) == (1, 0)
    assert engine.portfolio.qty(SYMBOL) == qty + 3
    assert list(bot.unsettled) == []
    bot.on_fill(announced(3, 89, 1))  # its report, arriving after all
    assert engine.portfolio.qty(SYMBOL) == qty + 3
    assert system.risk_state is not None
    system.risk_state.close()
    app.close()


def test_orders_whose_final_status_was_heard_are_kept_within_a_bound() -> None:
    """Heard final but not yet read back: only the latest `max_heard` stay followed."""
    unsettled = Unsettled(max_heard=2)
    for coid in ("a", "b", "c", "open"):
        unsettled.track(coid)
    for coid in ("a", "b", "c"):
        unsettled.settle(coid, "filled")
    unsettled.settle("open", "partially_filled")
    assert list(unsettled) == ["b", "c", "open"]
    assert unsettled.heard("c") and not unsettled.heard("open")


async def test_two_executions_alike_in_size_price_and_time_are_two_fills(db_url: str) -> None:
    """A resting order met by two equal trades in one millisecond: the venue reports two
    executions (two ids) of one size, price and time. The bot hears of one on the bus and
    reads the other back from the store: both are booked, each once."""
    app, system, catch_up = restarted_with_a_resting_order(db_url)
    bot = catch_up.bot
    engine = bot.engines[("sma_cross", SYMBOL)]
    qty = engine.portfolio.qty(SYMBOL)
    store_fill(app, 2, 90, 1, "partially_filled", trade="a")
    store_fill(app, 2, 90, 1, "filled", trade="b")
    assert bot.on_fill(announced(2, 90, 1, trade="a"))  # heard on the bus
    await catch_up()  # the other is read back
    assert catch_up.fills == 1 and engine.portfolio.qty(SYMBOL) == qty + 4
    bot.on_fill(announced(2, 90, 1, trade="b"))  # its late report: booked once
    assert engine.portfolio.qty(SYMBOL) == qty + 4
    assert system.risk_state is not None
    system.risk_state.close()
    app.close()


async def test_a_database_away_is_read_again(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    store_bars(app, bars(30))
    store_order(app, COID, "market")
    system = Services(app, ("bot",))
    bot = system._bot()
    store_fill(app, 5, 90, 0, "filled")
    calls = 0

    def sessions() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return app.sessions()

    catch_up = FeedbackCatchUp(bot, sessions, retry_seconds=0.01)  # type: ignore[arg-type]
    await catch_up()
    assert calls == 2 and (catch_up.fills, catch_up.statuses) == (1, 1)
    assert "could not read its open orders back (database away)" in caplog.text
    assert bot.engines[("sma_cross", SYMBOL)].inflight == {}
    assert system.risk_state is not None
    system.risk_state.close()
    app.close()
