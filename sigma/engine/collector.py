"""The cyclic garbage collector held back while a backtest steps through its bars.

A run keeps every order, fill and trade it makes, so the collector's young generation fills
every few hundred orders and each pass walks objects that all stay alive: measured on an SMA
cross over 300k minute bars, a quarter of the run's time. Raising the young generation's
threshold for the run removes that cost, and unlike switching the collector off, garbage in
reference cycles (a strategy's own) is still collected, only in larger batches.

The thresholds are process-wide: runs in several threads share one raised setting, and the
last one to finish puts back what was there before the first began.

Even relaxed, the young generation is walked: at 100,000 allocations during a long run, and
by the first collection after the thresholds go back (8-10 ms at 100k bars, ~70 ms in
collections at 1M, now and then an older generation's too). A run that knows how many
tracked objects it made and keeps (its orders, fills and trades) calls `promote_kept` between
stretches of bars: when the young generation holds little else (at most `FOREIGN_YOUNG` more
objects), it is moved to the oldest generation without being walked (a collection that found
it all alive would have walked it and moved it one generation up).
At most `FOREIGN_YOUNG` objects of others per stretch are promoted that way (garbage in
cycles among them waits for the next full collection); a strategy that makes more is
collected as before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

RELAXED_YOUNG = 100_000
"""Young-generation threshold while a run steps (Python's default: 700 allocations)."""

FOREIGN_YOUNG = 2_000
"""Young objects besides a run's own records that `promote_kept` may promote unwalked (the
default threshold's 700 made before the run started, a strategy's few)."""

_lock = threading.Lock()
_runs = 0
_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def collector_relaxed() -> Iterator[None]:
    """Collect young garbage every RELAXED_YOUNG allocations, not every 700, while inside."""
    global _runs, _saved
    with _lock:
        if _runs == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(RELAXED_YOUNG, _saved[0]), *_saved[1:])
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                gc.set_threshold(*_saved)


def promote_kept(kept: int) -> bool:
    """Move the young generation to the oldest one without walking it, when it holds at
    most `FOREIGN_YOUNG` objects besides the `kept` ones a run made since its last call and
    keeps alive (orders, fills, trades). Not done when the process keeps objects frozen (`sigma
    up`, `sigma backtest`): `gc.unfreeze` would give them back to the collector. True when
    promoted."""
    if gc.get_count()[0] > kept + FOREIGN_YOUNG or gc.get_freeze_count():
        return False
    gc.freeze()  # every generation into the permanent one: two list splices
    gc.unfreeze()  # and all of it back into the oldest
    return True
