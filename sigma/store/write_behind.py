"""WriteBehind: database writes done in order on a thread of their own.

The live price loop must not wait for the database: a small write through a pooled
connection (check-out with its ping, the statement, a durable commit) held it 2 to 16 ms on
PostgreSQL under load, and every tick, confirm and fill queued behind it. Writes handed to a
`WriteBehind` return at once and run one after another, in the order given; a read that must
see them runs on the same thread after them (`after_writes`). A write that fails is logged
and the ones after it go on: what is written this way (the adaptive loop's lasting state and
decisions) is kept for restarts and audits, and trading does not depend on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

__all__ = ["WriteBehind"]

log = logging.getLogger(__name__)

R = TypeVar("R")


class WriteBehind:
    """One writer thread; `what` names its writes in the log when one fails."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="write-behind")

    def later(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue `write(*args, **kwargs)` after the writes queued before it; returns at once.
        Raises RuntimeError once closed."""
        self._thread.submit(write, *args, **kwargs).add_done_callback(
            partial(_log_failure, self.what)
        )

    def after_writes(self, read: Callable[..., R], *args: Any) -> R:
        """`read(*args)` once the writes queued before it are done, and its result."""
        return self._thread.submit(read, *args).result()

    def close(self) -> None:
        """Do every queued write, then stop the thread."""
        self._thread.shutdown(wait=True)


def _log_failure(what: str, done: Future[Any]) -> None:
    error = done.exception()
    if error is not None:
        log.error("writing %s failed; trading continues", what, exc_info=error)
