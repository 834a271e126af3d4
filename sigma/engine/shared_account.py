"""Several symbols trading from one account: an engine per symbol over one `Portfolio`.

Each symbol keeps its own engine (its strategy instance, data, pending orders and fills), so
a strategy reads one symbol exactly as it does alone. What they share is a `SharedAccount`:
the cash and positions, the latest close of every symbol (the marks equity is measured
with), and the margin. Orders are sized against the whole account's equity and buying
power; the margin is checked on every bar of every symbol against the whole account, and a
breach liquidates every position at its latest close and stops every engine.
"""

from __future__ import annotations

from decimal import Decimal

from sigma.engine.engine import Engine, EngineConfig
from sigma.engine.portfolio import Portfolio
from sigma.strategies.base import Strategy
from sigma.strategies.series import Data

_ZERO = Decimal(0)


class SharedAccount:
    """The account the engines of a portfolio run trade from."""

    def __init__(self, initial_cash: Decimal) -> None:
        self.portfolio = Portfolio(cash=initial_cash)
        self.marks: dict[str, Decimal] = {}
        """The latest close of each symbol that has had a bar."""
        self.engines: dict[str, SharedAccountEngine] = {}

    def equity(self) -> Decimal:
        """Cash plus every position at its latest close."""
        return self.portfolio.equity(self.marks)

    def liquidate(self, trigger: SharedAccountEngine, reason: str) -> None:
        """Close every position at its symbol's latest close, write off a deficit left, stop
        every engine; the liquidation is recorded on `trigger`'s margin guard."""
        for engine in self.engines.values():
            engine.cancel_pending(engine.symbol)
            if engine.symbol in self.marks:
                engine.close_out(max(engine.data.cursor.i, 0), self.marks[engine.symbol])
            engine.halted = True
        shortfall = max(-self.portfolio.cash, _ZERO)
        self.portfolio.cash += shortfall
        i = trigger.data.cursor.i
        trigger.margin.liquidated(
            i, trigger.data.time(i), reason, self.marks[trigger.symbol], shortfall
        )


class SharedAccountEngine(Engine):
    """One symbol's engine trading from a `SharedAccount`."""

    def __init__(
        self,
        strategy: Strategy,
        symbol: str,
        data: Data,
        config: EngineConfig,
        account: SharedAccount,
    ) -> None:
        self.account = account
        super().__init__(strategy, symbol, data, config)
        self.portfolio = account.portfolio
        account.engines[symbol] = self
        self._margin_due = 0  # the account moves with every symbol's bars: look each bar
        self.funding: list[tuple[int, Decimal]] = []
        """(bar, payment) of each funding payment on this symbol's position."""

    def step(self, i: int) -> None:
        """Process bar `i` with this symbol's mark at its close."""
        self.account.marks[self.symbol] = Decimal(repr(self.data.value("close", i)))
        super().step(i)

    def equity(self) -> Decimal:
        """The whole account's equity at the latest closes (this symbol's: the current)."""
        return self.account.equity()

    def _prices(self, symbol: str, price: Decimal) -> dict[str, Decimal]:
        return {**self.account.marks, symbol: price}

    def _check_margin(self, i: int) -> None:
        """At bar `i`'s close: charge this symbol's funding on its position, then liquidate
        the whole account when its margin is breached."""
        if self.position_qty(self.symbol) and (rate := self.margin.funding_rate(i)) is not None:
            payment = self.margin.fund(self.portfolio, self.symbol, self.last_price, rate)
            self.funding.append((i, payment))
        marks = self.account.marks
        # A flat account breaches too when a close left it owing (cash at or below zero).
        if self.portfolio.cash <= _ZERO or any(
            pos.qty for pos in self.portfolio.positions.values()
        ):
            reason = self.margin.model.breach(
                self.portfolio.equity(marks), self.portfolio.gross_exposure(marks)
            )
            if reason is not None:
                self.account.liquidate(self, reason)
                return
        self._margin_due = 0


__all__ = ["SharedAccount", "SharedAccountEngine"]
