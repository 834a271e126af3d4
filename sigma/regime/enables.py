"""Operators' enable requests (`AdaptiveStateStore.request_enable`, `sigma regime enable`)
for an `AdaptiveHook`: read from the store on a bar of the symbol, at most every
`poll_seconds` - on every bar it would be a query in the bot's tick path for what happens a
few times a year."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sigma.regime.state import AdaptiveStateStore, EnableRequest

__all__ = ["EnableRequests"]

log = logging.getLogger(__name__)


class EnableRequests:
    """The enable requests stored in `state` (None: there are none)."""

    def __init__(self, state: AdaptiveStateStore | None, poll_seconds: float) -> None:
        self.state = state
        self.poll_seconds = poll_seconds
        self.clock: Callable[[], float] = time.monotonic
        self._read: dict[str, float] = {}

    def due(self, symbol: str) -> list[EnableRequest]:
        """The requests for strategies on `symbol`, when it is time to read them again; []
        otherwise, and when reading fails."""
        if self.state is None:
            return []
        now = self.clock()
        last = self._read.get(symbol)
        if last is not None and now - last < self.poll_seconds:
            return []
        self._read[symbol] = now
        try:
            return self.state.enable_requests(symbol)
        except Exception:
            log.exception("reading enable requests failed; trading continues")
            return []

    def drop(self, request: EnableRequest, symbol: str) -> None:
        """Forget a request that was handled."""
        assert self.state is not None  # a request was read from it
        try:
            self.state.drop_enable_request(request.strategy, symbol)
        except Exception:
            log.exception("dropping an applied enable request failed; trading continues")
