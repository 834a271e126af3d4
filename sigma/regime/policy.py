"""The parameter-change policy of a live bot: which stored parameter versions are changes to
make, and whether one is adopted.

A version the regime loop wrote, or one the tester stored to put a baseline back, is in force
already. With the loop off every version is a change, used from the next bar. With the loop on
a change must first pass its StrategyTester (a walk-forward on recent bars) and then becomes
the baseline the loop adjusts from, else the loop would steer back to the old one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sigma.regime.hook import AdaptiveHook
from sigma.regime.sinks import LOOP_AUTHORS
from sigma.strategies.base import Strategy

TESTER = "strategy_tester"
"""Author of the parameter versions that put a baseline back after a refused change."""


class ParamChangePolicy:
    """Decides parameter changes for the strategies `hook` watches (None: the loop is off)."""

    def __init__(self, hook: AdaptiveHook | None) -> None:
        self.hook = hook

    def is_change(self, author: str | None) -> bool:
        """False for a version the regime loop wrote or the tester put back (in force
        already); with the loop off every version is a change."""
        return self.hook is None or author not in (*LOOP_AUTHORS, TESTER)

    async def apply(
        self, strategy: Strategy, symbol: str, params: Mapping[str, Any], *, by: str
    ) -> str | None:
        """Use `params` for `strategy` on `symbol` from the next bar: None when done, else why
        the loop refused them. Raises ValueError for a set the strategy does not accept."""
        hook = self.hook
        if hook is None:
            strategy.update_params(**params)
            return None
        change = hook.propose(strategy.name, symbol, params)
        # The walk-forward runs in a thread: it takes tens of milliseconds.
        verdict = await asyncio.to_thread(hook.test, change)
        return hook.adopt(change, verdict, by=by, ts=datetime.now(UTC))

    def baseline(self, strategy: str, symbol: str) -> dict[str, Any]:
        """The parameters the loop adjusts `strategy` on `symbol` from."""
        assert self.hook is not None, "only the regime loop keeps a baseline"
        return dict(self.hook.loop.adjuster.baseline(strategy, symbol))
