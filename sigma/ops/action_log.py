"""ActionLogger: the audit trail of every decision the bot takes, in `action_log`.

The hot path only appends to an in-memory buffer. Rows reach the database in batches: when
`flush_every` entries are waiting, every `flush_interval` seconds, and on close. With `start()`
a background task does the writing in a worker thread; without it (backtests, scripts) a full
buffer is flushed inline. Each decision is also logged through stdlib logging as structured
fields, and risk rejections are raised as warnings on the optional notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sigma.domain.jsontext import to_jsonable
from sigma.notify.alert import Alert
from sigma.notify.service import NotificationService
from sigma.ops.logging import RESERVED_ATTRS
from sigma.store.action_log import append_actions
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory
from sigma.store.types import utcnow

ACTION_SIGNAL = "signal"
ACTION_ORDER_ACCEPTED = "order_accepted"
ACTION_ORDER_REJECTED = "order_rejected"
ACTION_KILL_SWITCH = "kill_switch"
ACTION_PARAM_CHANGE = "param_change"


@dataclass(frozen=True, slots=True)
class ActionEntry:
    """One buffered decision (becomes one `action_log` row)."""

    action: str
    source: str
    mode: str | None
    strategy: str | None
    symbol: str | None
    details: dict[str, Any] = field(default_factory=dict)
    ts: datetime = field(default_factory=utcnow)

    def headline(self) -> str:
        """The decision in one line, for a console: the action, whose, and the order's side,
        quantity and price when it has them (``order_sent sma_cross BTC buy 0.5 @ 42000``)."""
        d = self.details
        parts = [self.action, *(p for p in (self.strategy, self.symbol) if p)]
        parts += [str(d[key]) for key in ("side", "qty") if d.get(key) is not None]
        price = d.get("price", d.get("ref_price"))
        if price is not None:
            parts.append(f"@ {price}")
        if d.get("reason"):
            parts.append(f"({d['reason']})")
        return " ".join(parts)

    def to_row(self) -> dict[str, Any]:
        """The `action_log` row's values; details are made JSON-safe (Decimal as exact text)."""
        return {
            "ts": self.ts,
            "source": self.source,
            "action": self.action,
            "mode": self.mode,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "details": to_jsonable(self.details),
        }


class ActionLogger:
    """Records decisions; see the module docstring for when rows are written.

    `session_factory` may be None to log only. If the database is down, entries stay buffered
    (up to `max_buffer`, oldest dropped first) and are retried at the next flush.
    """

    def __init__(
        self,
        session_factory: SessionFactory | None,
        *,
        source: str = "bot",
        mode: str | None = None,
        notifier: NotificationService | None = None,
        flush_every: int = 100,
        flush_interval: float = 1.0,
        max_buffer: int = 10_000,
        logger: logging.Logger | None = None,
    ) -> None:
        self._factory = session_factory
        self.source = source
        self.mode = mode
        self._notifier = notifier
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self._buffer: deque[ActionEntry] = deque(maxlen=max_buffer)
        self._buffer_lock = threading.Lock()
        # Serialises flushes so a failed batch is put back before the next one is taken.
        self._flush_lock = threading.Lock()
        self._logger = logger or logging.getLogger("sigma.actions")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._closing = False
        self.dropped = 0

    @property
    def pending(self) -> int:
        """Entries waiting to be written."""
        return len(self._buffer)

    # --- recording ------------------------------------------------------------------------

    def log(
        self,
        action: str,
        *,
        strategy: str | None = None,
        symbol: str | None = None,
        source: str | None = None,
        level: int = logging.INFO,
        **details: Any,
    ) -> ActionEntry:
        """Record any decision. Returns at once; the row is written by the next flush."""
        entry = ActionEntry(action, source or self.source, self.mode, strategy, symbol, details)
        self._log_line(entry, level)
        if self._factory is None:
            return entry
        with self._buffer_lock:
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append(entry)
            full = len(self._buffer) >= self.flush_every
        if full:
            self._request_flush()
        return entry

    def signal(self, strategy: str, symbol: str, signal: str, **details: Any) -> ActionEntry:
        """A strategy's signal that the bot acted on (`signal`: buy, sell, close, ...)."""
        return self.log(ACTION_SIGNAL, strategy=strategy, symbol=symbol, signal=signal, **details)

    def order_accepted(
        self, strategy: str, symbol: str, client_order_id: str, **details: Any
    ) -> ActionEntry:
        """An order that passed risk checks and went to execution."""
        return self.log(
            ACTION_ORDER_ACCEPTED,
            strategy=strategy,
            symbol=symbol,
            client_order_id=client_order_id,
            **details,
        )

    def order_rejected(
        self, strategy: str, symbol: str, reason: str, **details: Any
    ) -> ActionEntry:
        """An order refused by risk; also a warning alert (deduplicated per strategy, symbol
        and reason) when a notifier is set and an event loop is running."""
        entry = self.log(
            ACTION_ORDER_REJECTED,
            strategy=strategy,
            symbol=symbol,
            level=logging.WARNING,
            reason=reason,
            **details,
        )
        if self._notifier is not None:
            alert = Alert(
                "warning",
                entry.source,
                f"order rejected for {strategy} {symbol}: {reason}",
                dedupe_key=f"order_rejected:{strategy}:{symbol}:{reason}",
                details={"strategy": strategy, "symbol": symbol, "reason": reason, **details},
            )
            try:
                self._notifier.submit(alert)
            except RuntimeError:  # no running loop (a synchronous backtest): nothing to send on
                self._logger.debug("no event loop; rejection alert not sent")
        return entry

    def kill_switch(self, engaged: bool, reason: str, **details: Any) -> ActionEntry:
        """The kill switch was engaged or released."""
        return self.log(
            ACTION_KILL_SWITCH,
            level=logging.CRITICAL if engaged else logging.WARNING,
            engaged=engaged,
            reason=reason,
            **details,
        )

    def param_change(
        self,
        strategy: str,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        *,
        reason: str,
        changed_by: str,
    ) -> ActionEntry:
        """Strategy parameters changed (by the regime adjuster, an optimiser or a person)."""
        return self.log(
            ACTION_PARAM_CHANGE,
            strategy=strategy,
            old=old,
            new=new,
            reason=reason,
            changed_by=changed_by,
        )

    def _log_line(self, entry: ActionEntry, level: int) -> None:
        if not self._logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "action": entry.action,
            "source": entry.source,
            "mode": entry.mode,
            "strategy": entry.strategy,
            "symbol": entry.symbol,
        }
        for key, value in entry.details.items():
            # `extra` may not overwrite LogRecord attributes (msg, name, ...): rename those.
            fields[f"detail_{key}" if key in RESERVED_ATTRS else key] = value
        self._logger.log(level, entry.headline(), extra=fields)

    # --- writing --------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every buffered entry in one transaction (blocking). Returns rows written; on
        a database error the entries are kept for the next attempt and 0 is returned."""
        if self._factory is None:
            return 0
        with self._flush_lock:
            with self._buffer_lock:
                batch = list(self._buffer)
                self._buffer.clear()
            if not batch:
                return 0
            try:
                with session_scope(self._factory) as session:
                    append_actions(session, [entry.to_row() for entry in batch])
            except Exception:
                self._logger.exception("writing %d action_log rows failed", len(batch))
                with self._buffer_lock:
                    # Put the batch back in front of anything logged meanwhile.
                    newer = list(self._buffer)
                    self._buffer.clear()
                    self._buffer.extend(batch)
                    overflow = len(batch) + len(newer) - (self._buffer.maxlen or 0)
                    self.dropped += max(0, overflow)
                    self._buffer.extend(newer)
                return 0
            return len(batch)

    def _request_flush(self) -> None:
        if self._loop is not None and self._wake is not None:
            # Safe from any thread; the background task does the write.
            self._loop.call_soon_threadsafe(self._wake.set)
        else:
            self.flush()

    async def start(self) -> None:
        """Start the background flusher on the running loop (idempotent)."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._closing = False
        self._task = self._loop.create_task(self._run(), name="action-log-flusher")

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):  # the interval elapsed: flush anyway
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await asyncio.to_thread(self.flush)

    async def aclose(self) -> None:
        """Stop the background flusher and write what is left."""
        if self._task is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            await self._task
        self._task = self._loop = self._wake = None
        await asyncio.to_thread(self.flush)

    def close(self) -> None:
        """Synchronous final flush, for code without an event loop."""
        self.flush()
