"""Live sizing on a real venue's rules: the instrument's lot step (fractions of a BTC, not whole
units), its minimums, the cash available, and on a spot venue a short signal means flat."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pytest

from sigma.domain import Bar, Instrument, Order, OrderStatus, Side
from sigma.engine.engine import EngineConfig
from sigma.engine.fill_model import FillModel
from sigma.engine.live import DispatchEngine
from tests.scripted import FromBarZero

D = Decimal
BTC = Instrument(
    symbol="BTC",
    venue_symbol="BTC/USDT",
    base="BTC",
    quote="USDT",
    tick_size=D("0.01"),
    lot_step=D("0.00001"),
    min_qty=D("0.00001"),
    min_notional=D("5"),
)


class Scripted(FromBarZero):
    """Places the orders of `script[bar]` on each bar."""

    name = "scripted"
    script: ClassVar[dict[int, list[tuple[str, dict[str, object]]]]] = {}

    def init(self) -> None:
        self.bar = 0

    def on_bar(self) -> None:
        for method, kwargs in self.script.get(self.bar, []):
            getattr(self, method)(**kwargs)
        self.bar += 1


def engine(
    script: dict[int, list[tuple[str, dict[str, object]]]], **config: object
) -> tuple[DispatchEngine, list[Order]]:
    sent: list[Order] = []
    strategy = type("S", (Scripted,), {"script": script})()
    live = DispatchEngine(
        strategy,
        "BTC",
        EngineConfig(initial_cash=D(10_000), fill_model=FillModel(), **config),  # type: ignore[arg-type]
        lambda order, ref: sent.append(order),
    )
    return live, sent


def bar(i: int, price: str = "92000") -> Bar:
    p = D(price)
    return Bar("BTC", datetime(2024, 1, 1, 0, i, tzinfo=UTC), p, p, p, p, D(1))


def test_btc_sizes_on_the_lot_step_not_whole_units() -> None:
    live, sent = engine({0: [("buy", {"fraction": 1})]}, instruments={"BTC": BTC})
    live.on_live_bar(bar(0), D(92_000))
    assert [o.qty for o in sent] == [D("0.10869")]  # 10,000 / 92,000 down to 0.00001
    whole, none_sent = engine({0: [("buy", {"fraction": 1})]})
    whole.on_live_bar(bar(0), D(92_000))
    assert none_sent == []  # the paper default is whole units: unchanged


def test_an_order_under_the_venue_minimum_is_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    live, sent = engine({0: [("buy", {"qty": D("0.00004")})]}, instruments={"BTC": BTC})
    with caplog.at_level(logging.WARNING):
        live.on_live_bar(bar(0), D(92_000))
    assert sent == [] and live.orders[0].status is OrderStatus.REJECTED
    assert "under the minimum 5 USDT" in caplog.text
    limit, sent = engine(
        {0: [("buy", {"qty": D("0.0001"), "limit": 40_000.0})]}, instruments={"BTC": BTC}
    )
    limit.on_live_bar(bar(0), D(92_000))  # 4 USDT at its limit price: under the minimum too
    assert sent == [] and limit.orders[0].status is OrderStatus.REJECTED


def test_a_spot_buy_spends_no_more_than_the_cash() -> None:
    live, sent = engine({0: [("buy", {"qty": D(1)})]}, instruments={"BTC": BTC}, can_short=False)
    live.on_live_bar(bar(0), D(92_000))
    assert [o.qty for o in sent] == [D("0.10869")]


def test_on_spot_a_short_signal_means_flat_said_once(caplog: pytest.LogCaptureFixture) -> None:
    script: dict[int, list[tuple[str, dict[str, object]]]] = {
        0: [("go_long", {"fraction": 0.5})],
        1: [("go_short", {"fraction": 0.5})],
        2: [("go_long", {"fraction": 0.5})],
        3: [("go_short", {"fraction": 0.5})],
    }
    live, sent = engine(script, instruments={"BTC": BTC}, can_short=False)
    with caplog.at_level(logging.WARNING):
        for i in range(4):
            live.on_live_bar(bar(i), D(92_000))
    # Long, flat (the close only), long, flat: never a short.
    assert [(o.side, o.reduce_only) for o in sent] == [
        (Side.BUY, False),
        (Side.SELL, True),
        (Side.BUY, False),
        (Side.SELL, True),
    ]
    assert live.position_qty("BTC") == 0
    assert caplog.text.count("cannot sell short") == 1
    # A venue that can short (paper) takes the entry.
    paper, paper_sent = engine(script, instruments={"BTC": BTC})
    for i in range(2):
        paper.on_live_bar(bar(i), D(92_000))
    assert [o.side for o in paper_sent] == [Side.BUY, Side.SELL, Side.SELL]
