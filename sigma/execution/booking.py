"""What the order worker books for an order: its row, its new fills, the position they settle
into and one ledger entry per fill, in the transaction the caller runs.

The statements are the store's (`sigma.store.ledger`: built once, idempotency checks folded
into the inserts); here is what to write: the order's status, the fills that are new, the
settlement of each (`sigma.execution.settlement`).

New orders the broker settled at once (the paper broker's) are booked many at a time by a
plan (`book_new_orders`, see `sigma.store.pipeline`): two round trips for a whole batch, on
PostgreSQL one network exchange each, instead of five per order; on PostgreSQL one exchange
when the caller knows the positions the batch touches (compare-and-set, see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sigma.domain import OrderStatus, Side
from sigma.execution.broker import BrokerFill, BrokerReport
from sigma.execution.events import OrderEvent
from sigma.execution.settlement import Holding, fee_currency, settle_fee_in
from sigma.store import ledger
from sigma.store.handles import Connection
from sigma.store.ledger import PositionKey
from sigma.store.pipeline import Plan
from sigma.store.types import quantize, utcnow


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
    return ledger.insert_order(conn, _order_row(event, OrderStatus.NEW.value))


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
        inserted, locked = yield [ledger.new_orders(dialect, rows), ledger.position_locks(keys)]
        new = {coid for (coid,) in inserted}
        holdings = {(s, st, m): Holding(q, a, r) for s, st, m, q, a, r in locked}
    before = dict(holdings)
    fills: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
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
            holdings[key], settled = _settle_fills(
                holdings.get(key, Holding()), event, report, report.fills
            )
            entries.extend(settled)
            touched.add(key)
        results.append(Booked(row["status"], report.fills))
    changed = sorted(touched & set(before))
    if swap:
        orders = [ledger.order_inserts(rows)]  # inserted by the first round trip otherwise
        positions = [ledger.position_swaps((key, before[key], holdings[key]) for key in changed)]
    else:
        orders = []
        positions = [
            ledger.position_inserts((key, holdings[key]) for key in sorted(touched - set(before))),
            ledger.position_updates((key, holdings[key]) for key in changed),
        ]
    yield [*orders, ledger.fill_inserts(fills), *positions, ledger.ledger_inserts(entries)]
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
    order = ledger.lock_order(conn, report.client_order_id)
    if order is None:
        raise RuntimeError(f"report for unknown order {report.client_order_id}")
    new = tuple(
        fill
        for fill in report.fills
        if ledger.insert_fill(conn, _fill_row(order.client_order_id, fill))
    )
    filled = order.filled_qty + sum((f.qty for f in new), start=Decimal(0))
    _check_filled(order, filled)
    avg_price = order.avg_fill_price
    if new:
        _book_position(conn, order, report, new)
        avg_price = ((avg_price or Decimal(0)) * order.filled_qty + _notional(new)) / filled
    status = _status(report.status, filled, order.qty)
    ledger.update_order(
        conn,
        order.client_order_id,
        filled_qty=filled,
        avg_fill_price=avg_price,
        status=status,
        exchange_order_id=report.exchange_order_id or order.exchange_order_id,
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
    key = (order.symbol, order.strategy, order.mode)
    row = ledger.lock_position(conn, key)
    holding = Holding(row.qty, row.avg_price, row.realized_pnl) if row is not None else Holding()
    holding, entries = _settle_fills(holding, order, report, fills)
    if row is None:
        ledger.insert_position(conn, key, holding)
    else:
        ledger.update_position(conn, key, holding)
    ledger.insert_ledger(conn, entries)


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
