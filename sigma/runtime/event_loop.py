"""The event loop SIGMA's long-running processes (`sigma up`, `worker`, `bot`, `api`) run on."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed, asyncio's otherwise.

    uvloop's I/O and scheduling cost a fraction of asyncio's per wake-up: on the live
    pipeline's order path (five processes handing each order on) that took the transport
    floor's p50 from 2.3 to 1.4 ms (`benchmarks/transport_floor.py`, one order per event)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept optional
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a `new_event_loop` (the benchmarks' entry, so their
    in-process figures are those of `sigma up`)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def serve(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main()` to completion on a `new_event_loop`.

    What was loaded so far (FastAPI, SQLAlchemy, pydantic, the strategies: some 250,000
    objects) lives as long as the process, so it is moved out of the garbage collector's sight
    first: otherwise every full collection walks all of it, a 150 ms pause of every request or
    tick in flight (the p99 of a busy API) a few times a minute."""
    gc.collect()
    gc.freeze()
    run(main())
