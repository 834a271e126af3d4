"""The local exchange's memory across restarts: an append-only JSON-lines file.

Each line is one change as the venue committed it (orders as they are now, new fills, changed
balances), written and flushed before the reply leaves, so a venue killed after accepting an
order still knows it when it starts again. At start the file is read back and rewritten as one
snapshot line per venue, which keeps it as small as the state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from sigma.venues.emulator.model import (
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    VenueOrder,
    VenueTrade,
)

__all__ = ["FileJournal", "VenueState"]


@dataclass
class VenueState:
    """What a journal holds for one venue."""

    orders: dict[int, VenueOrder] = field(default_factory=dict)
    trades: dict[int, VenueTrade] = field(default_factory=dict)
    balances: dict[str, dict[str, tuple[Decimal, Decimal]]] = field(default_factory=dict)

    def apply(self, entry: dict[str, Any]) -> None:
        for raw in entry.get("orders", ()):
            order = _order(raw)
            self.orders[order.order_id] = order
        for raw in entry.get("trades", ()):
            trade = _trade(raw)
            self.trades[trade.trade_id] = trade
        for key, rows in entry.get("balances", {}).items():
            held = self.balances.setdefault(key, {})
            for asset, (free, locked) in rows.items():
                held[asset] = (Decimal(free), Decimal(locked))

    def balance_rows(self) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
        return {
            key: [(asset, free, locked) for asset, (free, locked) in rows.items()]
            for key, rows in self.balances.items()
        }


class FileJournal:
    """Appends each change to ``path``; :meth:`load` reads and compacts it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def load(self) -> dict[str, VenueState]:
        """The state per venue name. A torn last line (killed mid-write) is ignored; any other
        bad line is an error naming the file and line."""
        states: dict[str, VenueState] = {}
        if self.path.exists():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                try:
                    entry = json.loads(line)
                    states.setdefault(entry["venue"], VenueState()).apply(entry)
                except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
                    if number == len(lines):
                        break
                    raise ValueError(f"{self.path}, line {number}: {exc}") from None
        self._compact(states)
        return states

    def write(
        self,
        venue: str,
        orders: Sequence[VenueOrder],
        trades: Sequence[VenueTrade],
        balances: dict[str, dict[str, tuple[Decimal, Decimal]]],
    ) -> None:
        """Append one change and flush it to the operating system."""
        self._append(_entry(venue, orders, trades, balances))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _append(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(entry, default=str, separators=(",", ":")) + "\n")
        self._file.flush()

    def _compact(self, states: dict[str, VenueState]) -> None:
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.path.with_suffix(self.path.suffix + ".tmp")
        with fresh.open("w", encoding="utf-8") as out:
            for name, state in states.items():
                entry = _entry(
                    name, list(state.orders.values()), list(state.trades.values()), state.balances
                )
                out.write(json.dumps(entry, default=str, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        fresh.replace(self.path)


def _entry(
    venue: str,
    orders: Sequence[VenueOrder],
    trades: Sequence[VenueTrade],
    balances: dict[str, dict[str, tuple[Decimal, Decimal]]],
) -> dict[str, Any]:
    return {
        "venue": venue,
        "orders": [asdict(o) for o in orders],
        "trades": [asdict(t) for t in trades],
        "balances": {
            key: {asset: [str(free), str(locked)] for asset, (free, locked) in rows.items()}
            for key, rows in balances.items()
        },
    }


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _order(raw: dict[str, Any]) -> VenueOrder:
    return VenueOrder(
        order_id=int(raw["order_id"]),
        client_id=str(raw["client_id"]),
        account=str(raw["account"]),
        symbol=str(raw["symbol"]),
        side=Side(raw["side"]),
        type=OrderType(raw["type"]),
        tif=TimeInForce(raw["tif"]),
        qty=_dec(raw["qty"]),
        quote_qty=_dec(raw["quote_qty"]),
        price=_dec(raw["price"]),
        stop_price=_dec(raw["stop_price"]),
        status=OrderStatus(raw["status"]),
        created_ms=int(raw["created_ms"]),
        updated_ms=int(raw["updated_ms"]),
        filled=Decimal(raw["filled"]),
        cum_quote=Decimal(raw["cum_quote"]),
        fees={k: Decimal(v) for k, v in raw["fees"].items()},
        locked=Decimal(raw["locked"]),
        working=bool(raw["working"]),
        trade_count=int(raw["trade_count"]),
        client_id_given=bool(raw.get("client_id_given", True)),
        cancel_id=str(raw.get("cancel_id", "")),
    )


def _trade(raw: dict[str, Any]) -> VenueTrade:
    return VenueTrade(
        trade_id=int(raw["trade_id"]),
        order_id=int(raw["order_id"]),
        client_id=str(raw["client_id"]),
        account=str(raw["account"]),
        symbol=str(raw["symbol"]),
        side=Side(raw["side"]),
        price=Decimal(raw["price"]),
        qty=Decimal(raw["qty"]),
        quote_qty=Decimal(raw["quote_qty"]),
        fee=Decimal(raw["fee"]),
        fee_asset=str(raw["fee_asset"]),
        maker=bool(raw["maker"]),
        time_ms=int(raw["time_ms"]),
    )
