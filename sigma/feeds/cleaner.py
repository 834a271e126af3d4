"""DataCleaner: the gate between raw feed frames and the rest of SIGMA.

Every frame either becomes a :class:`~sigma.domain.Tick` or is dropped with a reason that is
logged (logger ``sigma.feeds.cleaner``) and counted. Nothing a hostile or broken feed sends can
raise out of :meth:`DataCleaner.clean` or grow its memory without bound.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sigma.domain import Tick
from sigma.feeds.ticks import (
    MAX_FUTURE_SECONDS,
    Clock,
    TickError,
    check_not_future,
    decode_tick,
)
from sigma.ops.repeats import RepeatFilter
from sigma.risk.symbol_map import DEFAULT_MAX_SYMBOLS, SymbolMap

__all__ = ["DataCleaner"]

log = logging.getLogger(__name__)

LOG_PREVIEW_CHARS = 200


def _preview(raw: object) -> str:
    """The first characters of a frame, escaped so a frame cannot forge log lines."""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw[:LOG_PREVIEW_CHARS]).decode("utf-8", "replace")
    elif not isinstance(raw, str):
        raw = repr(raw)
    return repr(raw[:LOG_PREVIEW_CHARS])


class DataCleaner:
    """Turns raw frames into ticks, dropping bad ones with a logged and counted reason.

    Beyond :func:`~sigma.feeds.ticks.decode_tick`'s checks it rejects symbols outside
    ``symbols`` (when given) as ``"unknown_symbol"`` and ticks older than the last accepted tick
    of the same symbol as ``"out_of_order"`` (equal timestamps are fine: several trades share a
    millisecond). ``drops`` counts drops by reason.
    """

    def __init__(
        self,
        symbols: Iterable[str] | None = None,
        *,
        clock: Clock = time.time,
        max_future: float = MAX_FUTURE_SECONDS,
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        self.symbols: frozenset[str] | None = None if symbols is None else frozenset(symbols)
        self.clock = clock
        self.max_future = max_future
        self.accepted = 0
        self.drops: Counter[str] = Counter()
        self._last_ts: SymbolMap[str, datetime] = SymbolMap(max_symbols)
        # A hostile feed sends bad frames by the thousand: the first of each reason is logged
        # with its frame, the rest fold into a count per window (`drops`, exported as
        # ``sigma_feed_frames_dropped_total{reason}``, keeps the exact numbers). Per cleaner,
        # so one feed's flood does not hide another's first drop.
        self._repeats = RepeatFilter()

    @property
    def dropped(self) -> int:
        """Frames dropped so far, for any reason."""
        return sum(self.drops.values())

    def clean(self, raw: object) -> Tick | None:
        """Decode and check one frame; the tick, or None when the frame was dropped."""
        try:
            if not isinstance(raw, bytes | bytearray | str):
                raise TickError("type", f"frame must be bytes or str, got {type(raw).__name__}")
            tick = decode_tick(raw, clock=self.clock, max_future=self.max_future)
            self._admit(tick)
        except TickError as exc:
            self.drop(exc.reason, str(exc), raw)
            return None
        except Exception as exc:  # a feed must never crash the reader
            self.drop("error", f"{type(exc).__name__}: {exc}", raw)
            return None
        return tick

    clean_data = clean  # the seed's name

    def check(self, tick: Tick) -> Tick | None:
        """Apply the whitelist, future and ordering checks to an already built tick (from an
        exchange adapter, say); the tick, or None when dropped."""
        try:
            check_not_future(tick.ts, self.clock, self.max_future)
            self._admit(tick)
        except TickError as exc:
            self.drop(exc.reason, str(exc), tick)
            return None
        return tick

    def reset(self) -> None:
        """Forget the per-symbol ordering state and the counters."""
        self._last_ts.clear()
        self.drops.clear()
        self.accepted = 0

    def _admit(self, tick: Tick) -> None:
        if self.symbols is not None and tick.symbol not in self.symbols:
            raise TickError("unknown_symbol", f"symbol {tick.symbol!r} is not configured")
        last = self._last_ts.get(tick.symbol)
        if last is not None and tick.ts < last:
            raise TickError(
                "out_of_order",
                f"{tick.symbol} ts {tick.ts.isoformat()} older than {last.isoformat()}",
            )
        self._last_ts.touch(tick.symbol, tick.ts)
        self.accepted += 1

    def drop(self, reason: str, message: str, raw: object) -> None:
        """Count and log a dropped frame (also for adapters whose own conversion failed)."""
        self.drops[reason] += 1
        if not log.isEnabledFor(logging.WARNING):
            return
        # The reason is part of the template so that repeats fold per reason, not across them;
        # reasons are SIGMA's own codes, never text from the frame.
        record = log.makeRecord(
            log.name,
            logging.WARNING,
            __file__,
            0,
            f"dropped frame ({reason}): %s; frame=%s",
            (message, _preview(raw)),
            None,
        )
        if self._repeats.filter(record):
            log.handle(record)
