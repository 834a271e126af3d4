"""The live bot's protective orders across a restart.

The engine holds stop-losses, take-profits and trailing stops in memory (see
sigma/engine/protective.py); this module keeps them in the store and gives them back.

Keeping
    `ProtectionKeeper.check` runs after each tick, fill and status report of an engine and
    compares a cheap fingerprint of what must survive with the one last written: a change
    (armed, a trailing level moved at a bar's close, a trigger sent or refused, cancelled,
    filled) queues one write of the whole document through `save` (a `ProtectionStore`,
    written behind, off the price loop); nothing left removes the row.

The document, per (strategy, symbol, mode)
    ``bar``: the time of the engine's current bar; every bar number below is relative to it,
    and a restart turns it back into its own numbering from the bars it warmed up with.
    ``guards``: each protective order (its order, armed or waiting for its entry, filled
    quantity, trailing extreme, the order its trigger sent while it is out, the bar a
    refused trigger may try again from). ``resting``: the OCO group and bars left of the
    orders resting at the venue, which the orders table does not keep.
    The best price of the forming bar a trailing stop has seen is not kept: the forming bar
    itself is lost with the process, and its trades move the stop at that bar's close.

Restoring (`restore_protection`, after the account and open orders were restored)
    A guard armed on a position that the booked (reconciled) account no longer holds, or
    waiting for an entry that ended unfilled, is dropped and logged; one waiting for an entry
    that filled while no bot ran is armed for what filled (from that entry's average price);
    the rest is armed again as it was, so the first tick after the restart triggers exactly
    as before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from sigma.engine.live import DispatchEngine
from sigma.engine.protective import protects
from sigma.runtime.order_state import guard_doc, guard_from_doc

__all__ = ["ProtectionKeeper", "Save", "protection_doc", "restore_protection"]

log = logging.getLogger(__name__)

Save = Callable[[str, str, dict[str, Any] | None], None]
"""Keep the protection of (strategy, symbol); None: there is none."""

_STORED = object()
"""Fingerprint of a document read back at start: the first check writes what is left."""


def _fingerprint(engine: DispatchEngine) -> tuple[Hashable, ...]:
    """What the document holds, in the engine's own bar numbers (they do not move each bar)."""
    guards = tuple(
        (
            g.order.client_order_id,
            g.armed,
            g.active_from,
            g.order.stop_price,
            g.order.qty,
            g.order.filled_qty,
            g.extreme,
            g.child,
            g.retry_from,
        )
        for g in engine.book.guards()
    )
    resting = _resting(engine, 0)
    if not guards and not resting:
        return ()
    return guards, tuple((coid, tuple(v.values())) for coid, v in resting.items())


def _resting(engine: DispatchEngine, cursor: int) -> dict[str, dict[str, Any]]:
    """The OCO group and bars left (counted from bar `cursor`) of each resting order that
    has either."""
    out = {}
    for coid, order in engine.resting.items():
        left = engine.bars_left(order)
        if left is not None or order.oco:
            last = None if left is None else left + engine.data.cursor.i - cursor
            out[coid] = {"bars_left": last, "oco": order.oco}
    return out


def protection_doc(engine: DispatchEngine) -> dict[str, Any] | None:
    """The protection of `engine` as the store keeps it (None: there is none)."""
    cursor = engine.data.cursor.i
    guards = [guard_doc(g, cursor) for g in engine.book.guards()]
    resting = _resting(engine, cursor)
    if not guards and not resting:
        return None
    bar = engine.data.time(cursor).isoformat() if cursor >= 0 else None
    return {"bar": bar, "guards": guards, "resting": resting}


class ProtectionKeeper:
    """Writes each engine's protection when it changed (through `save`)."""

    def __init__(self, save: Save) -> None:
        self.save = save
        self._last: dict[tuple[str, str], object] = {}

    def check(self, engine: DispatchEngine) -> None:
        """Queue writing `engine`'s protection if it changed since it was last written."""
        key = (engine.strategy.name, engine.symbol)
        now = _fingerprint(engine)
        if self._last.get(key, ()) == now:
            return
        self._last[key] = now
        self.save(key[0], key[1], protection_doc(engine))

    def restored(self, engine: DispatchEngine) -> None:
        """`engine` was given a stored document: the next check writes what is left of it."""
        self._last[(engine.strategy.name, engine.symbol)] = _STORED


def restore_protection(
    engine: DispatchEngine,
    doc: dict[str, Any],
    entries: Mapping[str, tuple[Decimal, Decimal]] | None = None,
) -> None:
    """Give `engine` (its account and open orders restored) the protection `doc` kept;
    `entries`: the quantity and average price filled of entries that are no longer open (a
    fill booked while no bot ran arms the protection waiting for it, for what filled)."""
    base = _bar_index(engine, doc.get("bar"))
    name = f"{engine.strategy.name} {engine.symbol}"
    held = engine.portfolio.qty(engine.symbol)  # as booked: a trigger's order may be out
    open_ids = {o.client_order_id for o in engine.open_orders(engine.symbol)}
    for stored in doc.get("guards", []):
        guard = guard_from_doc(engine.symbol, stored, base)
        order = guard.order
        if guard.armed and not protects(order, held):
            log.info(
                "%s: %s at %s dropped: no position left to protect", name, order.reason, guard.level
            )
            continue
        if not guard.armed and order.parent_id not in open_ids:
            filled = (entries or {}).get(order.parent_id)
            if filled is None or not protects(order, held):
                log.info(
                    "%s: %s dropped: its entry %s is no longer open",
                    name,
                    order.reason,
                    order.parent_id,
                )
                continue
            engine.restore_guard(guard)
            qty, price = filled
            engine.book.parent_filled(order.parent_id, qty, price, engine.data.cursor.i + 1)
            log.info(
                "%s: %s armed: its entry %s filled %s", name, order.reason, order.parent_id, qty
            )
            continue
        engine.restore_guard(guard)
    for coid, managed in doc.get("resting", {}).items():
        left = managed.get("bars_left")
        engine.restore_managed(
            coid,
            None if left is None else base + left - engine.data.cursor.i,
            managed.get("oco") or "",
        )


def _bar_index(engine: DispatchEngine, bar: str | None) -> int:
    """The number, in `engine`'s warmed-up bars, of the bar whose time is `bar`
    (the latest one at or before it); -1 when there is none."""
    if bar is None:
        return -1
    ts = np.datetime64(datetime.fromisoformat(bar).replace(tzinfo=None), "ns")
    return int(np.searchsorted(engine.data.ts, ts, side="right")) - 1
