"""The cyclic garbage collector held back for the whole of one `sigma backtest`.

Each collection walks every tracked object that is alive: the modules, classes and settings
loaded before the command starts (hundreds of thousands of objects), then the run's orders,
fills and trades, which all stay alive to the end. Measured at a million bars, collections
were ~15 % of the command's CPU time (~8 % at 100k bars). What is alive when the command
starts is left out of collections (`gc.freeze`) and the young generation is collected in
larger batches (`collector_relaxed`, as the engine does while it steps); garbage in
reference cycles is still collected. Both are put back when the command ends, so a process
that runs commands one after another (a test session) is left as it was.

The interpreter's last collection as the process exits walked all of it once more: ~0.35 s
of CPU at 100k bars, ~0.7 s at 1M, a fifth and a seventh of the command. Everything alive
then is frozen instead (at exit only), and the operating system takes the memory back; the
command's files and database connections are closed by then (`with` blocks), so nothing is
left waiting for a finalizer.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager

from sigma.engine.collector import collector_relaxed


@contextmanager
def collector_held_back() -> Iterator[None]:
    """Leave the objects alive now out of collections, and collect young garbage every
    `collector.RELAXED_YOUNG` allocations, while inside; skip the collection at exit."""
    atexit.unregister(gc.freeze)  # once, however many commands the process runs
    atexit.register(gc.freeze)
    gc.freeze()
    try:
        with collector_relaxed():
            yield
    finally:
        gc.unfreeze()
