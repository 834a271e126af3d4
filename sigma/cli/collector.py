"""The cyclic garbage collector held back for the whole of one `sigma backtest`.

Each collection walks every tracked object that is alive: the modules, classes and settings
loaded before the command starts (hundreds of thousands of objects), then the run's orders,
fills and trades, which all stay alive to the end. Measured at a million bars, collections
were ~15 % of the command's CPU time (~8 % at 100k bars). What is alive when the command
starts is left out of collections (`gc.freeze`) and the young generation is collected in
larger batches (`collector_relaxed`, as the engine does while it steps); garbage in
reference cycles is still collected. Both are put back when the command ends, so a process
that runs commands one after another (a test session) is left as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from sigma.engine.collector import collector_relaxed


@contextmanager
def collector_held_back() -> Iterator[None]:
    """Leave the objects alive now out of collections, and collect young garbage every
    `collector.RELAXED_YOUNG` allocations, while inside."""
    gc.freeze()
    try:
        with collector_relaxed():
            yield
    finally:
        gc.unfreeze()
