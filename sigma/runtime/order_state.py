"""Orders and protective orders as the store keeps them between runs (JSON, exact strings).

A paper simulation keeps its pending orders and protection in `sim_runs.account`, the live
bot its protection in `protective_orders`; both write and read them here. Bar numbers are
kept relative to the engine's current bar (`cursor`), since a restarted engine numbers its
bars anew.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sigma.domain import Order, OrderType, Side, TimeInForce
from sigma.engine.protective import Guard
from sigma.store.jsonsafe import to_jsonable

__all__ = ["ORDER_FIELDS", "guard_doc", "guard_from_doc", "order_doc", "order_from_doc"]

ORDER_FIELDS = (
    "side",
    "type",
    "qty",
    "equity_fraction",
    "limit_price",
    "stop_price",
    "reduce_only",
    "strategy",
    "tag",
    "created_at",
    "client_order_id",
    "tif",
    "bars",
    "reason",
    "oco",
    "parent_id",
    "trail",
    "trail_pct",
)
"""What is kept of an order (the symbol is the account's)."""


def order_doc(order: Order, **extra: Any) -> dict[str, Any]:
    """`order` (and `extra`) as a JSON document."""
    return to_jsonable({name: getattr(order, name) for name in ORDER_FIELDS} | extra)  # type: ignore[no-any-return]


def order_from_doc(symbol: str, stored: dict[str, Any]) -> Order:
    """An order `order_doc` kept, as the engine had it."""

    def number(name: str) -> Decimal | None:
        return None if stored.get(name) is None else Decimal(stored[name])

    return Order(
        symbol=symbol,
        side=Side(stored["side"]),
        type=OrderType(stored["type"]),
        qty=number("qty"),
        equity_fraction=number("equity_fraction"),
        limit_price=number("limit_price"),
        stop_price=number("stop_price"),
        reduce_only=bool(stored["reduce_only"]),
        strategy=stored["strategy"],
        tag=stored["tag"],
        created_at=None
        if stored["created_at"] is None
        else datetime.fromisoformat(stored["created_at"]),
        client_order_id=stored["client_order_id"],
        tif=TimeInForce(stored.get("tif") or "GTC"),
        bars=stored.get("bars"),
        reason=stored.get("reason") or "signal",
        oco=stored.get("oco") or "",
        parent_id=stored.get("parent_id") or "",
        trail=number("trail"),
        trail_pct=number("trail_pct"),
        filled_qty=number("filled_qty") or Decimal(0),
    )


def guard_doc(guard: Guard, cursor: int) -> dict[str, Any]:
    """Protective order `guard` as a JSON document, its bar numbers relative to `cursor`."""
    return order_doc(
        guard.order,
        filled_qty=guard.order.filled_qty,
        armed=guard.armed,
        active_from=guard.active_from - cursor,
        extreme=guard.extreme,
        child=guard.child,
        retry_from=None if guard.retry_from < 0 else guard.retry_from - cursor,
    )


def guard_from_doc(symbol: str, stored: dict[str, Any], cursor: int) -> Guard:
    """The protective order `guard_doc` kept, its bar numbers relative to `cursor`."""
    extreme, retry = stored.get("extreme"), stored.get("retry_from")
    return Guard(
        order_from_doc(symbol, stored),
        armed=bool(stored["armed"]),
        active_from=cursor + int(stored["active_from"]),
        extreme=None if extreme is None else Decimal(extreme),
        child=stored.get("child") or "",
        retry_from=-1 if retry is None else max(cursor + int(retry), 0),
    )
