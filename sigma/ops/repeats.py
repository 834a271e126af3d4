"""Folding repeated log lines: a flood of the same message (a bad frame per message, a failed
publish per tick while Redis is down) becomes one line per window and a count.

    log = logging.getLogger(__name__)
    log.addFilter(RepeatFilter())

The first record of a message passes; further records of the same logger, level and message
template within `window` seconds are dropped (with their tracebacks) and counted. The first
one after the window passes with `` (repeated N times)`` appended, N being the number dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_WINDOW = 60.0


@dataclass(slots=True)
class _Seen:
    since: float
    dropped: int = 0


class RepeatFilter(logging.Filter):
    """Passes a message once per `window` seconds, folding the repeats into a count (see the
    module docstring). At most `max_keys` messages are remembered (the oldest go first), so
    messages made of changing text cannot grow the memory."""

    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        super().__init__()
        if window <= 0:
            raise ValueError("window must be positive")
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        # Records come from any thread (the API's thread pool, the event loop).
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """True to log `record`; False for a repeat within the window."""
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window:
                seen.dropped += 1
                return False
            self._seen.pop(key, None)
            self._seen[key] = _Seen(now)
            while len(self._seen) > self.max_keys:
                del self._seen[next(iter(self._seen))]
        if seen is not None and seen.dropped:
            # Appended to the template, so the record's arguments still format as before.
            record.msg = f"{record.msg} (repeated {seen.dropped} times)"
        return True
