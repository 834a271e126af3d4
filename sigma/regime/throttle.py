"""Whether a strategy of an `AdaptiveHook` may open a new position: its verdict from the
loop (``keep``, ``throttle``, ``disable``) and, when throttled, its allowance of entries."""

from __future__ import annotations

from sigma.regime.loop import LoopDecision

__all__ = ["EntryThrottle"]


class EntryThrottle:
    """The verdict per (strategy, symbol), followed from the loop's decisions, and the entry
    slots of throttled strategies: one new entry per `bars` bars of the symbol."""

    def __init__(self, bars: int) -> None:
        if bars < 1:
            raise ValueError(f"throttle_bars must be at least 1, got {bars}")
        self.bars = bars
        self.status: dict[tuple[str, str], str] = {}
        # Bars seen per symbol, and the bar count at each throttled strategy's last entry.
        self._bar_count: dict[str, int] = {}
        self._last_entry: dict[tuple[str, str], int] = {}

    def count_bar(self, symbol: str) -> None:
        """A bar of `symbol` was processed."""
        self._bar_count[symbol] = self._bar_count.get(symbol, 0) + 1

    def pause(self, strategy: str, symbol: str, *, halted: bool) -> str:
        """Why a new entry must wait, "" when it may go (see `AdaptiveHook.entry_pause`);
        `halted`: a news halt is on for the symbol."""
        key = (strategy, symbol)
        status = self.status.get(key, "keep")
        if status == "disable":
            return "regime loop disabled this strategy on this symbol"
        if halted:
            return "news halt: no new entries"
        if status == "throttle":
            now = self._bar_count.get(symbol, 0)
            last = self._last_entry.get(key)
            if last is not None and now - last < self.bars:
                wait = self.bars - (now - last)
                return (
                    f"regime loop throttled this strategy: one new entry per "
                    f"{self.bars} bars, next in {wait}"
                )
            self._last_entry[key] = now
        return ""

    def follow(self, decision: LoopDecision) -> None:
        """Keep the verdict a decision about a strategy sets."""
        if decision.strategy is None:
            return
        key = (decision.strategy, decision.symbol)
        if decision.kind in ("throttle", "disable"):
            self.status[key] = decision.kind
        elif decision.kind == "restore":
            self.status[key] = "keep"
        elif decision.kind in ("reinstate", "enable"):
            self.status[key] = str(decision.details["status"])
