"""The order worker's database writes, as a few Core statements per order.

The worker books every order of the live pipeline, so these run on the hot path: SQLAlchemy
Core (no ORM unit of work), statements built once at import and executed with parameters
(building a statement costs more than running it), and `INSERT … ON CONFLICT DO NOTHING
RETURNING` makes each idempotency check part of an insert instead of a separate read.
PostgreSQL and SQLite (3.35+) both support that form.

New orders the broker settled at once (the paper broker's) are booked many at a time by a
plan (`book_new_orders`, see `sigma.store.pipeline`): two round trips for a whole batch, on
PostgreSQL one network exchange each, instead of five per order; on PostgreSQL one exchange
when the caller knows the positions the batch touches (compare-and-set, see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Insert, Table, bindparam, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from sigma.domain import OrderStatus, Side
from sigma.execution.broker import BrokerFill, BrokerReport
from sigma.execution.events import OrderEvent
from sigma.execution.settlement import Holding, fee_currency, settle_fee_in
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.store.pipeline import Batch, Plan
from sigma.store.types import quantize, utcnow

_orders: Table = OrderRecord.__table__  # type: ignore[assignment]
_fills: Table = FillRecord.__table__  # type: ignore[assignment]
_positions: Table = PositionRecord.__table__  # type: ignore[assignment]
_ledger: Table = LedgerEntry.__table__  # type: ignore[assignment]


def _insert_new(table: Table, returning: Any) -> dict[str, Insert]:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING` per dialect."""
    return {
        "postgresql": postgresql.insert(table).on_conflict_do_nothing().returning(returning),
        "sqlite": sqlite.insert(table).on_conflict_do_nothing().returning(returning),
    }


_INSERT_ORDER = _insert_new(_orders, _orders.c.status)
_INSERT_NEW_ORDER = _insert_new(_orders, _orders.c.client_order_id)
_ORDER_STATUS = select(_orders.c.status).where(_orders.c.client_order_id == bindparam("coid"))
_LOCK_ORDER = (
    select(
        _orders.c.client_order_id,
        _orders.c.symbol,
        _orders.c.side,
        _orders.c.type,
        _orders.c.strategy,
        _orders.c.mode,
        _orders.c.qty,
        _orders.c.filled_qty,
        _orders.c.avg_fill_price,
        _orders.c.exchange_order_id,
    )
    .where(_orders.c.client_order_id == bindparam("coid"))
    .with_for_update()
)
_UPDATE_ORDER = update(_orders).where(_orders.c.client_order_id == bindparam("coid"))
_INSERT_FILL = _insert_new(_fills, _fills.c.id)
_POSITION_KEY = (
    _positions.c.symbol == bindparam("key_symbol"),
    _positions.c.strategy == bindparam("key_strategy"),
    _positions.c.mode == bindparam("key_mode"),
)
_LOCK_POSITION = (
    select(
        _positions.c.symbol,
        _positions.c.strategy,
        _positions.c.mode,
        _positions.c.qty,
        _positions.c.avg_price,
        _positions.c.realized_pnl,
    )
    .where(*_POSITION_KEY)
    .with_for_update()
)
_UPDATE_POSITION = update(_positions).where(*_POSITION_KEY)
_SWAPPED_POSITIONS = (
    update(_positions)
    .where(
        *_POSITION_KEY,
        _positions.c.qty == bindparam("old_qty"),
        _positions.c.avg_price == bindparam("old_avg_price"),
        _positions.c.realized_pnl == bindparam("old_realized_pnl"),
    )
    .values(
        qty=bindparam("qty"),
        avg_price=bindparam("avg_price"),
        realized_pnl=bindparam("realized_pnl"),
        updated_at=bindparam("updated_at"),
    )
    .returning(_positions.c.id)
    .cte("swapped")
)
# The position as the caller knew it, replaced in the same statement; anything else fails
# the transaction (the function is migration 0008's).
_SWAP_POSITION = select(
    func.sigma_expect_rows(
        select(func.count()).select_from(_SWAPPED_POSITIONS).scalar_subquery(),
        1,
        func.concat(
            literal("position "),
            bindparam("key_symbol"),
            literal("/"),
            bindparam("key_strategy"),
            literal("/"),
            bindparam("key_mode"),
            literal(" changed since this worker booked it"),
        ),
    )
)
_INSERT_ORDER_ONCE = _orders.insert()  # a known client order id fails the transaction
_INSERT_NEW_FILL = _fills.insert()
_INSERT_POSITION = _positions.insert()
_INSERT_LEDGER = _ledger.insert()


@dataclass(frozen=True, slots=True)
class Booked:
    """What one booking changed: the order's status and the fills that were new."""

    status: str
    fills: tuple[BrokerFill, ...]


def _order_row(event: OrderEvent, status: str) -> dict[str, Any]:
    return {
        "client_order_id": event.client_order_id,
        "exchange_order_id": None,
        "mode": event.mode,
        "symbol": event.symbol,
        "side": event.side.value,
        "type": event.type.value,
        "qty": event.qty,
        "limit_price": event.limit_price,
        "stop_price": event.stop_price,
        "status": status,
        "strategy": event.strategy,
        "filled_qty": Decimal(0),
        "avg_fill_price": None,
        "created_at": utcnow(),
        "decided_at": event.created_at,
    }


def accept_order(conn: Connection, event: OrderEvent) -> str:
    """Insert the order (status `new`) unless its client order id is known; the order's
    status afterwards."""
    inserted = conn.execute(
        _INSERT_ORDER[conn.dialect.name], _order_row(event, OrderStatus.NEW.value)
    ).scalar_one_or_none()
    if inserted is not None:
        return str(inserted)
    return str(conn.execute(_ORDER_STATUS, {"coid": event.client_order_id}).scalar_one())


PositionKey = tuple[str, str, str]
"""(symbol, strategy, mode)."""


def book_new_orders(
    dialect: str,
    placed: list[tuple[OrderEvent, BrokerReport]],
    known: dict[PositionKey, Holding],
) -> Plan[list[Booked | None]]:
    """Record new orders together with the broker's reports on them: each order row is
    written in its final state, then its fills, the positions and the ledger. The result for
    an order whose client order id is already known is None, and nothing of it is written;
    `accept_order` and `book_report` take it from there.

    For brokers that settle inside the worker (the paper broker): there is no outside effect
    to protect by recording the order first, and one insert replaces an insert and an update.
    The first round trip inserts the orders and locks the positions they touch (in key order,
    so two workers lock in the same order); the second writes fills, positions and ledger.

    `known` holds positions as the caller's earlier bookings left them, and this plan keeps it
    up to date. On PostgreSQL, when it has every position the batch touches (and the batch's
    ids are distinct), the batch is one round trip: the orders are inserted plainly and each
    position is replaced only if it still holds the known values. An id on record (a
    redelivery) or a position someone else changed (another worker, a batch that failed after
    this one learned from it) then fails the whole transaction with a unique violation or a
    serialization failure: nothing of it is written, and the caller drops the position from
    `known` and books again. A stale entry can cost a round trip, never a wrong booking."""
    rows = [_settled_order_row(event, report) for event, report in placed]
    keys: list[PositionKey] = sorted(
        {(e.symbol, e.strategy, e.mode) for e, report in placed if report.fills}
    )
    ids = [event.client_order_id for event, _ in placed]
    swap = (
        dialect == "postgresql" and len(set(ids)) == len(ids) and all(key in known for key in keys)
    )
    holdings: dict[PositionKey, Holding]
    if swap:
        new, holdings = set(ids), {key: known[key] for key in keys}
    else:
        inserted, locked = yield [
            Batch(_INSERT_NEW_ORDER[dialect], rows, returning=True),
            Batch(_LOCK_POSITION, [_position_key(*key) for key in keys], returning=True),
        ]
        new = {coid for (coid,) in inserted}
        holdings = {(s, st, m): Holding(q, a, r) for s, st, m, q, a, r in locked}
    before = dict(holdings)
    fills: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    results: list[Booked | None] = []
    touched: set[PositionKey] = set()
    for (event, report), row in zip(placed, rows, strict=True):
        if event.client_order_id not in new:
            results.append(None)
            continue
        new.discard(event.client_order_id)  # the same id twice in a batch: the first counts
        fills.extend(_fill_row(event.client_order_id, fill) for fill in report.fills)
        if report.fills:
            key = (event.symbol, event.strategy, event.mode)
            holdings[key], entries = _settle_fills(
                holdings.get(key, Holding()), event, report, report.fills
            )
            ledger.extend(entries)
            touched.add(key)
        results.append(Booked(row["status"], report.fills))
    changed = sorted(touched & set(before))
    if swap:
        now = utcnow()
        orders = [Batch(_INSERT_ORDER_ONCE, rows)]  # inserted by the first round trip otherwise
        positions = [
            Batch(
                _SWAP_POSITION,
                [
                    {
                        **_position_key(*key),
                        **{f"old_{k}": v for k, v in _holding_values(before[key]).items()},
                        **_holding_values(holdings[key]),
                        "updated_at": now,
                    }
                    for key in changed
                ],
            )
        ]
    else:
        orders = []
        positions = [
            Batch(
                _INSERT_POSITION,
                [_position_row(key, holdings[key]) for key in sorted(touched - set(before))],
            ),
            Batch(
                _UPDATE_POSITION,
                [{**_position_key(*key), **_holding_values(holdings[key])} for key in changed],
            ),
        ]
    yield [*orders, Batch(_INSERT_NEW_FILL, fills), *positions, Batch(_INSERT_LEDGER, ledger)]
    # As the database holds them once this commits (quantized like every stored decimal).
    known.update({key: _stored(holdings[key]) for key in touched})
    return results


def _stored(holding: Holding) -> Holding:
    return Holding(
        quantize(holding.qty), quantize(holding.avg_price), quantize(holding.realized_pnl)
    )


def _settled_order_row(event: OrderEvent, report: BrokerReport) -> dict[str, Any]:
    """The order row of a new order in the state the broker's report leaves it in."""
    filled = sum((f.qty for f in report.fills), start=Decimal(0))
    _check_filled(event, filled)
    row = _order_row(event, _status(report.status, filled, event.qty))
    row["exchange_order_id"] = report.exchange_order_id
    if filled:
        row["filled_qty"] = filled
        row["avg_fill_price"] = _notional(report.fills) / filled
    return row


def book_report(conn: Connection, report: BrokerReport) -> Booked:
    """Book the report's new fills, the position, the ledger and the order (call inside one
    transaction; the order row is locked first, so concurrent bookings of it queue)."""
    order = conn.execute(_LOCK_ORDER, {"coid": report.client_order_id}).one_or_none()
    if order is None:
        raise RuntimeError(f"report for unknown order {report.client_order_id}")
    new = tuple(fill for fill in report.fills if _insert_fill(conn, order.client_order_id, fill))
    filled = order.filled_qty + sum((f.qty for f in new), start=Decimal(0))
    _check_filled(order, filled)
    avg_price = order.avg_fill_price
    if new:
        _book_position(conn, order, report, new)
        avg_price = ((avg_price or Decimal(0)) * order.filled_qty + _notional(new)) / filled
    status = _status(report.status, filled, order.qty)
    conn.execute(
        _UPDATE_ORDER,
        {
            "coid": order.client_order_id,
            "filled_qty": filled,
            "avg_fill_price": avg_price,
            "status": status,
            "exchange_order_id": report.exchange_order_id or order.exchange_order_id,
        },
    )
    return Booked(status, new)


def _check_filled(order: Any, filled: Decimal) -> None:
    """Refuse fills beyond the order's quantity (an order row or event), which would mean a
    fill booked twice under two ids; except on a market buy. A venue that buys by cost
    (Upbit) spends the quantity times the decision price, and gets more of the asset when the
    price fell before the order arrived: that is what was filled, and the order's
    `filled_qty` records it."""
    if filled > order.qty and (order.type, order.side) != ("market", "buy"):
        raise RuntimeError(
            f"order {order.client_order_id}: fills {filled} exceed quantity {order.qty}"
        )


def _notional(fills: tuple[BrokerFill, ...]) -> Decimal:
    return sum((f.qty * f.price for f in fills), start=Decimal(0))


def _insert_fill(conn: Connection, client_order_id: str, fill: BrokerFill) -> bool:
    """Store the fill; False when its broker fill id was booked before."""
    inserted = conn.execute(
        _INSERT_FILL[conn.dialect.name], _fill_row(client_order_id, fill)
    ).scalar_one_or_none()
    return inserted is not None


def _fill_row(client_order_id: str, fill: BrokerFill) -> dict[str, Any]:
    return {
        "client_order_id": client_order_id,
        "exchange_fill_id": fill.fill_id,
        "qty": fill.qty,
        "price": fill.price,
        "fee": fill.fee,
        "fee_asset": fill.fee_asset,
        "ts": fill.ts,
    }


def _book_position(
    conn: Connection, order: Any, report: BrokerReport, fills: tuple[BrokerFill, ...]
) -> None:
    """Settle `fills` (of `report`) into the position of `order` (an order row) and write one
    ledger entry per fill."""
    key = _position_key(order.symbol, order.strategy, order.mode)
    row = conn.execute(_LOCK_POSITION, key).one_or_none()
    holding = Holding(row.qty, row.avg_price, row.realized_pnl) if row is not None else Holding()
    holding, entries = _settle_fills(holding, order, report, fills)
    if row is None:
        conn.execute(
            _INSERT_POSITION, _position_row((order.symbol, order.strategy, order.mode), holding)
        )
    else:
        conn.execute(_UPDATE_POSITION, {**key, **_holding_values(holding)})
    conn.execute(_INSERT_LEDGER, entries)


def _settle_fills(
    holding: Holding, order: Any, report: BrokerReport, fills: tuple[BrokerFill, ...]
) -> tuple[Holding, list[dict[str, Any]]]:
    """`holding` after `fills` of `order` (an order row or event), each with its fee in the
    currency it was paid in (see `settle_fee_in`), and one ledger entry per fill; the
    ledger's fee is in the quote currency."""
    side = Side(order.side)
    entries = []
    for fill in fills:
        currency = fee_currency(fill.fee_asset, report.base_asset, report.quote_asset)
        result = settle_fee_in(holding, side, fill.qty, fill.price, fill.fee, currency)
        holding = result.holding
        entries.append(
            {
                "ts": fill.ts,
                "mode": order.mode,
                "symbol": order.symbol,
                "strategy": order.strategy,
                "cash_delta": result.cash_delta,
                "fee": result.fee,
                "realized_pnl": result.realized_pnl,
                "reason": "fill",
                "client_order_id": order.client_order_id,
            }
        )
    return holding, entries


def _position_key(symbol: str, strategy: str, mode: str) -> dict[str, str]:
    return {"key_symbol": symbol, "key_strategy": strategy, "key_mode": mode}


def _holding_values(holding: Holding) -> dict[str, Decimal]:
    return {
        "qty": holding.qty,
        "avg_price": holding.avg_price,
        "realized_pnl": holding.realized_pnl,
    }


def _position_row(key: tuple[str, str, str], holding: Holding) -> dict[str, Any]:
    symbol, strategy, mode = key
    return {"symbol": symbol, "strategy": strategy, "mode": mode, **_holding_values(holding)}


def _status(reported: OrderStatus, filled: Decimal, qty: Decimal) -> str:
    """The order's status once `filled` of `qty` is booked. A final report ends the order
    whatever the fills total: a market order the venue ended before it filled all of it (an
    Upbit buy by cost, a Binance order the book ran out for) is FILLED with less, and would
    otherwise wait as partially filled for fills that never come."""
    if filled >= qty:
        return OrderStatus.FILLED.value
    if reported in (OrderStatus.CANCELLED, OrderStatus.REJECTED) or (
        reported is OrderStatus.FILLED and filled > 0
    ):
        return reported.value
    return (OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW).value
