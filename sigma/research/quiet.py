"""Silencing the margin guard's warnings within optimisation trials.

A backtest says once why its account refused or cut an order; a search runs hundreds of
backtests, and the same line from each would bury the search's own output. The silence is
scoped to the trial's context (a context variable), so a backtest another thread runs at the
same time still says it.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sigma.engine import margin

_QUIET = contextvars.ContextVar("sigma_quiet_margin", default=False)


class _QuietTrials(logging.Filter):
    """Drops the margin guard's records made within `quiet_margin`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET.get()


logging.getLogger(margin.__name__).addFilter(_QuietTrials())


@contextmanager
def quiet_margin() -> Iterator[None]:
    """Within: the margin guard's warnings are not logged (in this context only)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


__all__ = ["quiet_margin"]
