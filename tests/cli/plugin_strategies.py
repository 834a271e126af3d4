"""A strategy plugin file for the optimiser's tests: loaded from a folder, so another process
can only get it by loading the file again."""

from __future__ import annotations

from pathlib import Path

_CROSS = """
from sigma.strategies import Param, Strategy, crossed_above
from sigma.strategies.indicators import sma


class {cls}(Strategy):
    name = "{name}"
    fast = Param(5, low=2, high=20)
    slow = Param(30, low=21, high=60)

    def init(self):
        self.f = self.indicator(sma, self.data.close, self.fast)
        self.s = self.indicator(sma, self.data.close, self.slow)

    def on_bar(self):
        if crossed_above({enter_on}):
            self.{enter}()
        elif crossed_above({leave_on}):
            self.go_flat()
"""

SLOW_CROSS = _CROSS.format(
    cls="SlowCross", name="slow_cross", enter_on="self.f, self.s", enter="go_long",
    leave_on="self.s, self.f",
)  # fmt: skip
"""Long on the fast average crossing above the slow one, flat on the reverse."""
SHORT_CROSS = _CROSS.format(
    cls="ShortCross", name="short_cross", enter_on="self.s, self.f", enter="go_short",
    leave_on="self.f, self.s",
)  # fmt: skip
"""Short-only: short on the slow average crossing above the fast one, flat on the reverse."""


def write_plugin(folder: Path) -> Path:
    """`folder` holding the plugin `slow_cross` (runs on the exact engine only)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slow_cross.py").write_text(SLOW_CROSS)
    return folder
