"""`sigma up` against a venue: with SIGMA_VENUE and the ccxt config `sigma venue` prints, the
system takes its prices from the venue's WebSocket (no built-in market), sizes on the venue's
instruments, sends orders through the worker to the venue and books them; on spot a short
signal leaves the strategy flat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, UPBIT_KEY, venue_config

from sigma.bootstrap import App
from sigma.cli.venue import venue_environment
from sigma.config import SettingsError, load_settings
from sigma.config.venue import venue_settings
from sigma.runtime.services import Services
from sigma.store.models import FillRecord, OrderRecord, PositionRecord
from sigma.strategies import Strategy
from sigma.venues.ccxt.data import CcxtDataClient
from sigma.venues.emulator.server import VenueServer

WAIT = 30.0


class LongThenShort(Strategy):
    """Long half the account on its first bar, short on its third (flat on spot)."""

    name = "long_then_short"

    def init(self) -> None:
        self.bar = 0

    def on_bar(self) -> None:
        if self.bar == 0:
            self.go_long(0.5)
        elif self.bar == 2:
            self.go_short(0.5)
        self.bar += 1


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def venue_app(server: VenueServer, tmp_path: Path, **overrides: Any) -> App:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'sigma.db'}",
        venue="binance",
        exchange_config={
            **server.ccxt_config("binance"),
            "apiKey": BINANCE_KEY,
            "secret": BINANCE_SECRET,
        },
        symbols=["BTC"],
        bar_seconds=1,
        adaptive=False,
        max_drawdown=None,
        commission_pct=Decimal(0),
        **{"live_strategies": [LongThenShort.name], **overrides},
    )
    app = App(settings)
    app.strategies.add(LongThenShort, "test")
    return app


@contextlib.asynccontextmanager
async def running(system: Services) -> AsyncIterator[Services]:
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    try:
        await until(lambda: system.ready.is_set() or runner.done(), "the system ready")
        if runner.done():
            runner.result()  # raises what stopped it
        yield system
    finally:
        stop.set()
        await asyncio.wait_for(runner, WAIT)


@contextlib.asynccontextmanager
async def trading(server: VenueServer, price: Decimal) -> AsyncIterator[None]:
    """The venue trades at ``price`` four times a second (bars of one second close)."""

    async def trade() -> None:
        while True:
            server.binance.tick("BTCUSDT", price, Decimal("0.01"))
            await asyncio.sleep(0.25)

    task = asyncio.create_task(trade())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_sigma_up_trades_on_the_venue(
    venue_server: VenueServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = venue_app(venue_server, tmp_path)
    assert app.settings.trading.mode == "live"  # naming a venue trades there
    system = Services(app, ("market", "prices", "bot", "worker"))
    try:
        with caplog.at_level(logging.WARNING):
            async with running(system), trading(venue_server, Decimal("92000")):
                assert system.market is None  # prices come from the venue, not the built-in market
                assert isinstance(system.prices, CcxtDataClient)
                bot = system.bot
                assert bot is not None
                await until(lambda: bot.counters.bars >= 4, "four bars from venue prices")
                await until(lambda: bot.counters.fills >= 2, "the buy and the close booked")
                engine = bot.engines[(LongThenShort.name, "BTC")]
                # What the venue left: the dust under the lot step of a position that paid
                # its buy fee in BTC (the bot holds what is booked, not what it asked for).
                dust = engine.position_qty("BTC")
                assert Decimal(0) < dust < Decimal("0.00001")
        with app.sessions() as session:
            orders = list(session.scalars(select(OrderRecord).order_by(OrderRecord.id)))
            fills = list(session.scalars(select(FillRecord)))
        # Sized on the venue's 0.00001 step: half of a quarter stake of 10,000 USDT at about
        # 92,000; the close sells the 0.1 % fee less, down to the step.
        assert [(o.side, o.status, o.mode) for o in orders] == [
            ("buy", "filled", "live"),
            ("sell", "filled", "live"),
        ]
        step = Decimal("0.00001")
        assert all(o.qty == o.qty.quantize(step) for o in orders)
        assert Decimal("0.0125") < orders[0].qty < Decimal("0.0138")
        bought = orders[0].qty - sum(
            f.fee for f in fills if f.client_order_id == orders[0].client_order_id
        )
        assert orders[1].qty == bought.quantize(step, rounding="ROUND_FLOOR")
        assert bought - orders[1].qty == dust
        assert len(fills) >= 2 and all(f.exchange_fill_id for f in fills)
        # At the venue: the same two orders under our client ids, and no short.
        at_venue = venue_server.binance.orders(BINANCE_KEY, "BTCUSDT")
        assert [(o.client_id, o.side.value) for o in at_venue] == [
            (orders[0].client_order_id, "BUY"),
            (orders[1].client_order_id, "SELL"),
        ]
        assert caplog.text.count("cannot sell short") == 1
    finally:
        app.close()


async def test_a_dry_run_trades_paper_on_venue_prices(
    venue_server: VenueServer, tmp_path: Path
) -> None:
    app = venue_app(venue_server, tmp_path, mode="paper")
    system = Services(app, ("prices", "bot", "worker"))
    try:
        async with running(system), trading(venue_server, Decimal("92000")):
            bot = system.bot
            assert bot is not None
            await until(lambda: bot.counters.fills >= 1, "a paper fill")
        assert venue_server.binance.orders(BINANCE_KEY) == []  # nothing went to the venue
    finally:
        app.close()


async def test_the_line_sigma_venue_prints_configures_sigma_up(
    venue_server: VenueServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for assignment in shlex.split(venue_environment(venue_server, "upbit")):
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    venue = venue_settings(load_settings())
    assert venue is not None and venue.name == "upbit" and venue.live
    assert venue.ccxt_config["apiKey"] == UPBIT_KEY
    assert venue.ccxt_config["urls"] == venue_server.ccxt_config("upbit")["urls"]
    assert "apiKey" not in venue.public_config
    monkeypatch.setenv("SIGMA_VENUE_API_KEY", "other-key")
    monkeypatch.setenv("SIGMA_VENUE_SECRET", "other-secret")
    keyed = venue_settings(load_settings())
    assert keyed is not None and keyed.ccxt_config["apiKey"] == "other-key"
    assert keyed.ccxt_config["secret"] == "other-secret"
    assert venue_settings(load_settings(venue=None)) is None


def test_the_old_broker_setting_says_what_replaced_it() -> None:
    with pytest.raises(SettingsError, match="SIGMA_BROKER=binance is now SIGMA_VENUE=binance"):
        load_settings(broker="binance")
    assert load_settings(venue="").venue.venue is None
    assert load_settings(venue="upbit", mode="paper").trading.mode == "paper"


class BidOnce(Strategy):
    """Bids 0.01 below the market once per test (a class flag: a restarted bot must not bid
    again, it holds what the bid bought)."""

    name = "bid_once"
    placed = False

    def on_bar(self) -> None:
        if not BidOnce.placed and self.position == 0:
            BidOnce.placed = True
            self.buy(0.01, limit=float(self.data.close[-1]) - 1000)


async def test_a_restart_takes_on_what_the_venue_did_while_sigma_was_down(
    venue_server: VenueServer, tmp_path: Path
) -> None:
    BidOnce.placed = False
    app = venue_app(venue_server, tmp_path, live_strategies=[BidOnce.name])
    app.strategies.add(BidOnce, "test")

    def stored() -> list[OrderRecord]:
        with app.sessions() as session:
            return list(session.scalars(select(OrderRecord)))

    try:
        first = Services(app, ("prices", "bot", "worker"))
        async with running(first), trading(venue_server, Decimal("92000")):
            await until(lambda: [o.status for o in stored()] == ["new"], "the bid resting")
            await until(lambda: stored()[0].exchange_order_id is not None, "its venue id")
        # SIGMA is down; the market trades through the bid.
        for _ in range(20):
            venue_server.binance.tick("BTCUSDT", Decimal("90900"), Decimal("0.01"))
        (at_venue,) = venue_server.binance.orders(BINANCE_KEY, "BTCUSDT")
        assert at_venue.status.value == "FILLED"
        system = Services(app, ("prices", "bot", "worker"))
        async with running(system), trading(venue_server, Decimal("90900")):
            bot = system.bot
            assert bot is not None
            engine = bot.engines[(BidOnce.name, "BTC")]
            # 0.01 bought, less Binance's 0.1 % fee in BTC: the bot holds what is booked.
            held_now = Decimal("0.00999")
            await until(lambda: engine.position_qty("BTC") == held_now, "the fill taken on")
            await until(lambda: bot.counters.bars >= 3, "bars after the restart")
            assert engine.resting == {} and engine.inflight == {}
        ((order,),) = [stored()]
        assert (order.status, order.filled_qty) == ("filled", Decimal("0.01"))
        with app.sessions() as session:
            fills = list(session.scalars(select(FillRecord)))
            (held,) = session.scalars(select(PositionRecord)).all()
        assert sum(f.qty for f in fills) == Decimal("0.01")  # booked once
        assert sum(f.fee for f in fills) == Decimal("0.00001") and held.qty == Decimal("0.00999")
        # One bid at the venue: the restarted bot knew what it held.
        assert len(venue_server.binance.orders(BINANCE_KEY, "BTCUSDT")) == 1
    finally:
        app.close()


async def test_the_first_tick_is_judged_against_the_venues_ticker(
    venue_server: VenueServer, tmp_path: Path
) -> None:
    venue_server.binance.tick("BTCUSDT", Decimal("91500"), Decimal("0.01"))
    app = venue_app(venue_server, tmp_path)
    try:
        system = Services(app, ("prices",))
        async with running(system):
            assert system.prices is not None and system.prices.detector is not None
            reference = system.prices.detector.reference
            assert reference is not None
            known = reference("BTC")
            assert known is not None and known.price == Decimal("91500")
    finally:
        app.close()


async def test_a_venue_that_cannot_say_its_price_leaves_the_stored_one(tmp_path: Path) -> None:
    async with VenueServer(venue_config()).serve() as gone:
        config = gone.ccxt_config("binance")
    # The server is closed: its tickers cannot be read, which is logged, not fatal.
    app = App(
        load_settings(
            database_url=f"sqlite:///{tmp_path / 'sigma.db'}",
            venue="binance",
            exchange_config={**config, "apiKey": BINANCE_KEY, "secret": BINANCE_SECRET},
            symbols=["BTC"],
        )
    )
    try:
        system = Services(app, ("prices",))
        assert await system._venue_last_prices() == {}
    finally:
        app.close()
