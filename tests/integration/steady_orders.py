"""A steady stream of orders through the real pipeline, and the books it must leave.

The market is SIGMA's own WebSocket server replaying a synthetic market (`SPEED` bar-minutes
per second). `fault_flip` buys one unit on even bars and sells it on odd ones, so every bar of
every symbol is one order: `SPEED / 60` orders per second per symbol, whatever the prices do.

After a fault, `assert_books_exact` checks the database against what the bot accepted: every
accepted order is stored once, filled once, with one ledger entry per fill, and every position
is the signed sum of its fills.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sigma.bootstrap import App
from sigma.bus.base import QUEUE_ORDERS
from sigma.bus.rabbitmq import RabbitWorkQueue
from sigma.config import load_settings
from sigma.feeds.ws_server import BarReplay, MarketServer
from sigma.store.models import ActionLog, FillRecord, LedgerEntry, OrderRecord, PositionRecord

SYMBOLS = ("AAA", "BBB")
STRATEGY = "fault_flip"
# Bar-minutes per second: 5 bars per second per symbol, so 10 orders per second in all.
SPEED = 300.0
ORDERS_PER_SECOND = len(SYMBOLS) * SPEED / 60

FLIP_STRATEGY = '''
from sigma.strategies import Strategy


class FaultFlip(Strategy):
    """One unit long on even bars, flat on odd ones: one order on every bar."""

    name = "fault_flip"

    def on_bar(self):
        if len(self.data) % 2:
            self.sell(1)
        else:
            self.buy(1)
'''


def write_plugin(folder: Path) -> Path:
    """The folder with `fault_flip` in it (for `strategy_paths` / SIGMA_STRATEGY_PATHS)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fault_flip.py").write_text(FLIP_STRATEGY)
    return folder


def market(seed: int = 5) -> MarketServer:
    """The market server (port chosen when it starts); streams from the first client on."""
    replay = BarReplay.synthetic(list(SYMBOLS), seed=seed, bars=20_000, speed=SPEED)
    return MarketServer("127.0.0.1", 0, replay, min_clients=1)


def settings_values(
    *,
    database_url: str,
    redis_url: str,
    amqp_url: str,
    bus_prefix: str,
    plugins: Path,
    feed_url: str,
    var_dir: Path,
) -> dict[str, Any]:
    """The settings of a steady-order system (also as SIGMA_* variables, see `env`)."""
    return {
        "database_url": database_url,
        "redis_url": redis_url,
        "amqp_url": amqp_url,
        "bus_prefix": bus_prefix,
        "strategy_paths": [plugins],
        "symbols": list(SYMBOLS),
        "live_strategies": [STRATEGY],
        "feed_url": feed_url,
        "var_dir": var_dir,
        "bar_seconds": 60,
        "adaptive": False,
        "max_drawdown": None,
        "max_open_orders": None,
    }


def make_app(**values: Any) -> App:
    return App(load_settings(**settings_values(**values)))


def env(**values: Any) -> dict[str, str]:
    """The same settings as SIGMA_* environment variables, for `sigma bot` / `sigma worker`."""
    out: dict[str, str] = {}
    for key, value in settings_values(**values).items():
        if value is None:
            text = "none"
        elif isinstance(value, list):
            text = ",".join(str(v) for v in value)
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        out[f"SIGMA_{key.upper()}"] = text
    out["SIGMA_STRATEGY_PATHS"] = str(values["plugins"])
    return out


# --- watching the database ------------------------------------------------------------------
def order_counts(app: App) -> tuple[int, int]:
    """(orders stored, orders filled)."""
    with app.sessions() as s:
        total = s.scalar(select(func.count()).select_from(OrderRecord)) or 0
        filled = (
            s.scalar(
                select(func.count()).select_from(OrderRecord).where(OrderRecord.status == "filled")
            )
            or 0
        )
    return total, filled


async def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 30.0, interval: float = 0.05
) -> float:
    """Poll `check` until true; returns the seconds it took (AssertionError on timeout)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
    return time.monotonic() - started


def safe(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, False while it raises (the database may be the thing that is down)."""

    def wrapped() -> bool:
        try:
            return check()
        except Exception:
            return False

    return wrapped


def decided_at(app: App) -> dict[str, datetime]:
    """When each stored order was decided (the market time of its bar)."""
    with app.sessions() as s:
        rows = s.execute(select(OrderRecord.client_order_id, OrderRecord.decided_at)).all()
    return {coid: ts for coid, ts in rows}


# --- what the bot accepted ------------------------------------------------------------------
def decisions(app: App, action: str) -> list[str]:
    """Client order ids of the bot's `action` decisions (`order_sent`, `order_failed`) in the
    audit trail (`action_log`)."""
    with app.sessions() as s:
        rows = s.scalars(select(ActionLog.details).where(ActionLog.action == action)).all()
    return [str(d["client_order_id"]) for d in rows]


def decisions_in_log(lines: list[str], action: str) -> list[str]:
    """Client order ids of `action` decisions in JSON log lines (a process that was killed
    never flushed its last audit rows; its log lines were written one by one)."""
    out = []
    for line in lines:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("logger") == "sigma.actions" and record.get("action") == action:
            out.append(str(record["client_order_id"]))
    return out


@dataclass
class Books:
    """What the database holds, summarised."""

    orders: int
    fills: int
    accepted: int
    not_accepted: list[str] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "fills": self.fills,
            "accepted": self.accepted,
            "not_accepted": len(self.not_accepted),
        }


def assert_books_exact(
    app: App,
    accepted: list[str],
    *,
    failed: list[str] = (),  # type: ignore[assignment]
    unlogged: int = 0,
) -> Books:
    """The database against the orders the bot accepted.

    * every accepted order is stored exactly once (an id accepted twice is a duplicate the bot
      made), filled, with exactly one fill and one ledger entry per fill;
    * every stored order was accepted, or was reported failed by the bot (its publish timed out
      but the broker had it), or is one of at most `unlogged` orders a killed bot published but
      could not log any more;
    * each position is the signed sum of its fills.
    """
    assert len(accepted) == len(set(accepted)), "the bot accepted an order id twice"
    with app.sessions() as s:
        orders = {o.client_order_id: o for o in s.scalars(select(OrderRecord))}
        fills: dict[str, list[FillRecord]] = {}
        for f in s.scalars(select(FillRecord)):
            fills.setdefault(f.client_order_id, []).append(f)
        ledger: dict[str, int] = {}
        for coid, n in s.execute(
            select(LedgerEntry.client_order_id, func.count())
            .where(LedgerEntry.reason == "fill")
            .group_by(LedgerEntry.client_order_id)
        ).all():
            ledger[str(coid)] = n
        positions = {
            (p.strategy, p.symbol): p.qty for p in s.scalars(select(PositionRecord)) if p.qty
        }
    lost = sorted(set(accepted) - set(orders))
    assert not lost, f"{len(lost)} accepted orders are not in the database: {lost[:5]}"
    bad = {
        coid: (o.status, str(o.filled_qty), str(o.qty), len(fills.get(coid, [])), ledger.get(coid))
        for coid, o in orders.items()
        if o.status != "filled"
        or o.filled_qty != o.qty
        or len(fills.get(coid, [])) != 1
        or ledger.get(coid) != 1
    }
    assert not bad, f"orders not booked exactly once (status, filled, qty, fills, ledger): {bad}"
    strangers = sorted(set(orders) - set(accepted))
    unexplained = [c for c in strangers if c not in set(failed)]
    assert len(unexplained) <= unlogged, (
        f"{len(unexplained)} stored orders the bot never accepted: "
        + ", ".join(
            f"{c} ({orders[c].symbol} {orders[c].side} at {orders[c].created_at.isoformat()})"
            for c in unexplained[:5]
        )
    )
    expected: dict[tuple[str, str], Decimal] = {}
    for coid, o in orders.items():
        signed = sum((f.qty for f in fills[coid]), start=Decimal(0))
        key = (o.strategy, o.symbol)
        expected[key] = expected.get(key, Decimal(0)) + (signed if o.side == "buy" else -signed)
    assert positions == {k: v for k, v in expected.items() if v}, "positions != sum of fills"
    statuses: dict[str, int] = {}
    for o in orders.values():
        statuses[o.status] = statuses.get(o.status, 0) + 1
    return Books(
        orders=len(orders),
        fills=sum(len(v) for v in fills.values()),
        accepted=len(accepted),
        not_accepted=strangers,
        by_status=statuses,
    )


async def assert_no_dead_letters(amqp_url: str, bus_prefix: str) -> None:
    """Nothing was given up on: the dead-letter queue of `orders` is empty."""
    queue = RabbitWorkQueue(amqp_url, bus_prefix)
    try:
        letters = await queue.dead_letters(QUEUE_ORDERS)
    finally:
        await queue.close()
    assert [(d.message_id, d.headers.get("x-error")) for d in letters] == []


async def assert_queue_empty(amqp_url: str, bus_prefix: str) -> None:
    """No order event is left waiting in the `orders` queue."""
    queue = RabbitWorkQueue(amqp_url, bus_prefix)
    try:
        assert await queue.depth(QUEUE_ORDERS) == 0, "order events left in the queue"
    finally:
        await queue.close()


async def delete_queues(amqp_url: str, bus_prefix: str) -> None:
    """Remove the test's queues (same retry settings as the system, so its retry queues go)."""
    queue = RabbitWorkQueue(amqp_url, bus_prefix)
    try:
        await queue.delete_queues(QUEUE_ORDERS)
    finally:
        await queue.close()
