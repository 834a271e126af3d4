"""A restart continues: the bot's strategy accounts, open orders and indicator history are
rebuilt from the store before it sees its first price.

* Each (strategy, symbol) account is the booked one: the opening cash plus what the ledger
  moved, the position the worker booked (so a strategy holding 97 units after a restart
  knows it does, and its next order is the one an uninterrupted run would send).
* The orders that are not final are the engine's again: a resting one can be cancelled, a
  market one counts as in flight until its report comes; the bot follows them, with the fills
  already booked of them, to read back what the bus may not deliver (`sigma.runtime.catch_up`).
* The latest stored bars of the bot's bar size warm the indicators up.
* The protective orders held for each account are armed again as they were (see
  `sigma.runtime.protection`), those left with nothing to protect dropped.

The built-in market continues too: `market_start` is where its timestamps begin, never
before what the store already holds.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd

from sigma.config.settings import timeframe_label
from sigma.domain import Position
from sigma.engine.live import MAX_BARS, DispatchEngine
from sigma.runtime.bot import TradingBot
from sigma.runtime.catch_up import booked_fills
from sigma.runtime.protection import restore_protection
from sigma.store.bars import read_bars
from sigma.store.handles import SessionFactory
from sigma.store.protection import load_protection
from sigma.store.restart import (
    BookedAccount,
    booked_accounts,
    booked_orders,
    latest_market_time,
    open_orders,
    order_fills,
)

__all__ = ["market_start", "restore_bot"]

log = logging.getLogger(__name__)


def restore_bot(bot: TradingBot, sessions: SessionFactory, mode: str, timeframe: timedelta) -> None:
    """Warm every engine of `bot` with the stored bars of `timeframe`, then give it its
    account and open orders as booked in `mode`."""
    label = timeframe_label(int(timeframe.total_seconds()))
    symbols = {engine.symbol for engine in bot.engines.values()}
    with sessions() as session:
        history = {s: read_bars(session, s, label, last=MAX_BARS) for s in symbols}
        accounts = booked_accounts(session, mode)
        orders = open_orders(session, mode)
        booked = booked_orders(session, [o.client_order_id for o in orders])
        protection = load_protection(session, mode)
        parents = {g.get("parent_id") or "" for doc in protection.values() for g in doc["guards"]}
        entries = order_fills(session, mode, parents - {""})
    for (strategy, symbol), engine in bot.engines.items():
        engine.warm_up(history[symbol])
        account = accounts.get((strategy, symbol))
        if account is not None:
            _resume(engine, account)
        mine = [o for o in orders if (o.strategy, o.symbol) == (strategy, symbol)]
        engine.adopt(mine)
        for order in booked:
            if (order.strategy, order.symbol) == (strategy, symbol):
                bot.unsettled.track(order.client_order_id, booked_fills(order, engine))
        kept = protection.get((strategy, symbol))
        if kept is not None:
            restore_protection(engine, kept, entries)
            if bot.protection is not None:
                bot.protection.restored(engine)
        log.info(
            "%s %s continues with %d stored bars, cash %s, position %s, %d open orders, "
            "%d protective orders",
            strategy,
            symbol,
            len(history[symbol]),
            engine.portfolio.cash,
            engine.portfolio.qty(symbol),
            len(mine),
            len(engine.book.guards()),
        )


def _resume(engine: DispatchEngine, account: BookedAccount) -> None:
    # The engine's realised PnL is net of fees, the booked one gross: every fee paid is taken
    # as charged already (the open part's entry fees too, see `Portfolio.restore`).
    realized = account.realized_pnl - account.fees
    held = Position(engine.symbol, account.qty, account.avg_price, realized)
    since = account.updated_at or datetime.now(UTC)
    cash = engine.config.initial_cash + account.cash_moved
    engine.resume(cash, account.fees, held, since)


def market_start(
    sessions: SessionFactory,
    symbols: list[str],
    step: timedelta,
    history: int,
    now: datetime | None = None,
) -> datetime:
    """Where the built-in market's bars of `step` begin: after the newest stored price, so a
    restart goes on from where the last run stopped and never replays a traded timestamp;
    with nothing stored, `history` bars before the current one (by the wall clock), which a
    faster-than-real-time market plays until it reaches the present. The market never sends
    a tick before its own time (`MarketServer`), so from there on it runs in wall-clock time."""
    period = pd.Timedelta(step)
    current = pd.Timestamp(now or datetime.now(UTC)).floor(period)
    with sessions() as session:
        latest = latest_market_time(session, symbols, timeframe_label(int(step.total_seconds())))
    begin = (
        pd.Timestamp(latest).floor(period) + period
        if latest is not None
        else current - history * period
    )
    start: datetime = begin.to_pydatetime()
    return start
