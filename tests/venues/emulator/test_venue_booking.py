"""The order worker booking venue orders and reconciling with the venue, through real ccxt over
HTTP to `sigma venue`, on SQLite and PostgreSQL: fees in the currency the venue charged,
market orders the venue ended short or long, and every difference with the venue account
booked or raised."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal as D
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from adapter_helpers import event, limit
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, UPBIT_KEY, UPBIT_SECRET

from sigma.domain import Side
from sigma.execution.booking import accept_order
from sigma.execution.broker import Capability, PaperBroker
from sigma.execution.worker import OrderWorker
from sigma.store import session_factory
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.venues.emulator.server import VenueServer
from sigma.venues.factory import make_ccxt_broker

KEYS = {"binance": (BINANCE_KEY, BINANCE_SECRET), "upbit": (UPBIT_KEY, UPBIT_SECRET)}
MARKETS = {"binance": ("BTC/USDT", "ETH/USDT"), "upbit": ("BTC/KRW", "ETH/KRW")}
QUOTE = {"binance": "USDT", "upbit": "KRW"}
#: the test accounts' opening balances (venue_helpers)
OPENING = {
    "binance": {"USDT": D(100_000), "BTC": D(1), "ETH": D(10)},
    "upbit": {"KRW": D(100_000_000), "BTC": D(1), "ETH": D(10)},
}
UPBIT_START = D(130_000_000)

Alert = tuple[str, str, dict[str, Any]]


@dataclasses.dataclass
class Rig:
    """A worker on one venue account, the alerts it raised and a way to start another."""

    server: VenueServer
    venue: str
    sessions: sessionmaker[Session]
    alerts: list[Alert]
    workers: list[OrderWorker]

    def worker(self) -> OrderWorker:
        key, secret = KEYS[self.venue]
        config = {**self.server.ccxt_config(self.venue), "apiKey": key, "secret": secret}
        btc, eth = MARKETS[self.venue]
        broker = make_ccxt_broker(self.venue, {"BTC": btc, "ETH": eth}, config)
        worker = OrderWorker(
            self.sessions, broker, on_alert=lambda *alert: self.alerts.append(alert)
        )
        self.workers.append(worker)
        return worker

    def account(self) -> Any:
        front = self.server.binance if self.venue == "binance" else self.server.upbit
        return front.accounts[KEYS[self.venue][0]]

    def venue_total(self, asset: str) -> D:
        free, locked = self.account().balance(asset)
        return D(free + locked)

    def rows(self, model: type) -> list[Any]:
        with self.sessions() as s:
            return list(s.scalars(select(model)))

    def position(self, symbol: str = "BTC") -> D:
        return sum((p.qty for p in self.rows(PositionRecord) if p.symbol == symbol), D(0))

    def cash(self) -> D:
        return sum((e.cash_delta for e in self.rows(LedgerEntry)), D(0))

    def order(self, coid: str) -> OrderRecord:
        (row,) = [o for o in self.rows(OrderRecord) if o.client_order_id == coid]
        return row

    def assert_books_agree_with_the_venue(self) -> None:
        """Position = what the account holds beyond its opening; cash likewise; every order's
        fills sum to its filled quantity."""
        opening = OPENING[self.venue]
        for asset in ("BTC", "ETH"):
            assert self.venue_total(asset) == opening[asset] + self.position(asset), asset
        quote = QUOTE[self.venue]
        assert self.venue_total(quote) == opening[quote] + self.cash()
        fills = self.rows(FillRecord)
        for order in self.rows(OrderRecord):
            own = sum((f.qty for f in fills if f.client_order_id == order.client_order_id), D(0))
            assert own == order.filled_qty, order.client_order_id


@pytest.fixture
def make_rig(engine: Engine, make_venue_server: Any) -> Iterator[Any]:
    workers: list[OrderWorker] = []

    @contextlib.asynccontextmanager
    async def make(venue: str) -> AsyncIterator[Rig]:
        async with make_venue_server() as server:
            rig = Rig(server, venue, session_factory(engine), [], workers)
            try:
                yield rig
            finally:
                for worker in workers:
                    await worker.close()
                    await worker.broker.close()
                workers.clear()

    yield make


def record_only(rig: Rig, *events: Any) -> None:
    """The order rows as the worker writes them before the venue sees the orders."""
    with rig.sessions.kw["bind"].begin() as conn:
        for e in events:
            accept_order(conn, e)


# --- booking in the fee's currency ------------------------------------------------------------
async def test_a_binance_buy_pays_its_fee_in_btc_and_the_position_is_what_the_account_holds(
    make_rig: Any,
) -> None:
    async with make_rig("binance") as rig:
        worker = rig.worker()
        bought = await worker.execute(event("buy-00000001", Side.BUY, "0.01"))
        assert bought is not None and bought.status == "filled"
        assert rig.position() == D("0.00999")  # 0.01 less the 0.1 % fee taken in BTC
        (fill,) = rig.rows(FillRecord)
        assert (fill.qty, fill.fee, fill.fee_asset) == (D("0.01"), D("0.00001"), "BTC")
        (entry,) = rig.rows(LedgerEntry)
        assert entry.cash_delta == -fill.qty * fill.price  # no USDT fee charged
        assert entry.fee == fill.fee * fill.price  # the fee's value, in USDT
        rig.assert_books_agree_with_the_venue()
        sold = await worker.execute(event("sell-0000001", Side.SELL, "0.00999"))
        assert sold is not None and sold.status == "filled"
        assert rig.position() == 0
        assert {f.fee_asset for f in rig.rows(FillRecord)} == {"BTC", "USDT"}
        rig.assert_books_agree_with_the_venue()
        counts = await worker.reconcile("live")
        assert counts["balance_alerts"] == 0 and rig.alerts == []


async def test_an_upbit_buy_pays_its_fee_in_krw(make_rig: Any) -> None:
    async with make_rig("upbit") as rig:
        worker = rig.worker()
        bought = await worker.execute(event("buy-00000001", Side.BUY, "0.01", UPBIT_START))
        assert bought is not None and bought.status == "filled"
        fills = rig.rows(FillRecord)
        assert {f.fee_asset for f in fills} == {"KRW"}
        assert rig.position() == sum((f.qty for f in fills), D(0))  # no BTC taken
        rig.assert_books_agree_with_the_venue()


# --- market orders the venue ended short or long ----------------------------------------------
async def test_an_upbit_buy_by_cost_that_gets_more_than_asked_is_booked_filled(
    make_rig: Any,
) -> None:
    async with make_rig("upbit") as rig:
        worker = rig.worker()
        # Decided at 2 % above the venue's price: the amount spent buys more than 0.01 BTC.
        booked = await worker.execute(
            event("buy-00000001", Side.BUY, "0.01", UPBIT_START * D("1.02"))
        )
        assert booked is not None and booked.status == "filled"
        order = rig.order("buy-00000001")
        assert order.status == "filled" and order.filled_qty > order.qty
        rig.assert_books_agree_with_the_venue()


async def test_a_binance_market_order_the_book_ran_out_for_ends_filled(make_rig: Any) -> None:
    async with make_rig("binance") as rig:
        worker = rig.worker()
        # 20 levels of 1 ETH: a 25 ETH market buy takes 20 and the venue expires the rest.
        booked = await worker.execute(event("buy-00000001", Side.BUY, "25", "3000", symbol="ETH"))
        assert booked is not None and booked.status == "filled"
        order = rig.order("buy-00000001")
        assert (order.status, order.filled_qty) == ("filled", D(20))
        (venue_order,) = rig.server.binance.orders(BINANCE_KEY)
        assert venue_order.status.value == "EXPIRED"
        rig.assert_books_agree_with_the_venue()


# --- reconciliation ---------------------------------------------------------------------------
async def test_an_open_order_placed_behind_sigmas_back_is_an_alert(make_rig: Any) -> None:
    async with make_rig("binance") as rig:
        worker = rig.worker()
        await worker.execute(limit("lim-00000001", Side.BUY, "0.01", 81000))  # SIGMA's, resting
        assert (await worker.reconcile("live"))["unknown_open"] == 0
        key, secret = KEYS["binance"]
        config = {**rig.server.ccxt_config("binance"), "apiKey": key, "secret": secret}
        other = ccxt_async.binance(config)
        try:
            await other.create_order("BTC/USDT", "limit", "buy", 0.01, 80000)
        finally:
            await other.close()
        counts = await worker.reconcile("live")
        assert counts["unknown_open"] == 1
        (alert,) = [a for a in rig.alerts if "is not SIGMA's" in a[1]]
        assert alert[2]["symbol"] == "BTC" and D(alert[2]["price"]) == 80000
        await worker.reconcile("live")  # raised once, not every run
        assert len([a for a in rig.alerts if "is not SIGMA's" in a[1]]) == 1


@pytest.mark.parametrize("venue", ["binance", "upbit"])
async def test_an_order_that_filled_while_the_worker_was_down_is_booked_at_start(
    make_rig: Any, venue: str
) -> None:
    async with make_rig(venue) as rig:
        price = D(92_000) if venue == "binance" else UPBIT_START
        symbol = "BTCUSDT" if venue == "binance" else "KRW-BTC"
        front = rig.server.binance if venue == "binance" else rig.server.upbit
        placed = await rig.worker().execute(limit("lim-00000001", Side.BUY, "0.01", price - 1000))
        assert placed is not None and placed.status == "new"
        front.tick(symbol, price - 2000, D(1))  # fills while no worker runs
        counts = await rig.worker().reconcile("live")
        assert counts["booked"] == 1 and rig.order("lim-00000001").status == "filled"
        assert counts["unknown_trades"] == 0 and counts["balance_alerts"] == 0
        rig.assert_books_agree_with_the_venue()


@pytest.mark.parametrize(("venue", "qty"), [("binance", "0.12"), ("upbit", "0.025")])
async def test_a_fill_missing_in_the_database_is_booked(
    make_rig: Any, venue: str, qty: str
) -> None:
    async with make_rig(venue) as rig:
        worker = rig.worker()
        ref = D(92_000) if venue == "binance" else UPBIT_START
        sell = event("sell-0000001", Side.SELL, qty, ref)
        record_only(rig, sell)
        report = await worker.broker.place(sell)  # a market sell over three book levels
        assert len(report.fills) == 3
        # Booked from an answer that lacked its last trade: a final report ends the order.
        await worker.book(
            "BTC", Side.SELL, "", "live", dataclasses.replace(report, fills=report.fills[:2])
        )
        assert rig.order("sell-0000001").status == "filled"
        assert rig.order("sell-0000001").filled_qty < D(qty)
        counts = await worker.reconcile("live")
        assert counts["fills_booked"] == 1
        assert rig.order("sell-0000001").filled_qty == D(qty)
        assert counts["balance_alerts"] == 0 and rig.alerts == []
        rig.assert_books_agree_with_the_venue()
        assert (await worker.reconcile("live"))["fills_booked"] == 0


async def test_trades_of_an_order_sigma_did_not_place_are_an_alert(make_rig: Any) -> None:
    async with make_rig("upbit") as rig:
        worker = rig.worker()
        await worker.reconcile("live")
        key, secret = KEYS["upbit"]
        config = {**rig.server.ccxt_config("upbit"), "apiKey": key, "secret": secret}
        other = ccxt_async.upbit(config)
        try:
            await other.create_order("BTC/KRW", "market", "sell", 0.001)
        finally:
            await other.close()
        counts = await worker.reconcile("live")
        assert counts["unknown_trades"] >= 1
        assert any("that SIGMA did not place" in a[1] for a in rig.alerts)
        # ... and the balances it moved no longer agree with SIGMA's books.
        assert counts["balance_alerts"] == 2


async def test_a_balance_that_differs_is_an_alert_with_both_figures(make_rig: Any) -> None:
    async with make_rig("binance") as rig:
        worker = rig.worker()
        await worker.execute(event("buy-00000001", Side.BUY, "0.01"))
        first = await worker.reconcile("live")
        assert first["balances"] == 3 and first["balance_alerts"] == 0
        rig.account().credit("BTC", D("0.5"))
        counts = await worker.reconcile("live")
        assert counts["balance_alerts"] == 1
        (alert,) = rig.alerts
        assert alert[2]["asset"] == "BTC"
        assert D(alert[2]["venue_total"]) == D("1.50999")
        assert D(alert[2]["sigma_expects"]) == D("1.00999")
        assert "1.50999" in alert[1] and "1.00999" in alert[1]


async def test_the_worker_reconciles_every_few_seconds_until_stopped(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_rig("binance") as rig:
        worker = rig.worker()
        runs: list[str] = []
        real = worker.reconcile

        async def reconcile(mode: str) -> dict[str, int]:
            runs.append(mode)
            if len(runs) == 1:
                raise ConnectionError("venue unreachable")  # alerted; the next run goes on
            return await real(mode)

        monkeypatch.setattr(worker, "reconcile", reconcile)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.reconcile_every("live", 0.01, stop))
        async with asyncio.timeout(10):
            while len(runs) < 3:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert [a[1] for a in rig.alerts] == [
            "reconciliation failed: ConnectionError('venue unreachable')"
        ]


async def test_the_paper_broker_has_nothing_to_reconcile_periodically(engine: Engine) -> None:
    worker = OrderWorker(session_factory(engine), PaperBroker())
    try:
        assert Capability.RECONCILE not in worker.broker.capabilities
        stop = asyncio.Event()
        task = asyncio.create_task(worker.reconcile_every("paper", 0.001, stop))
        await asyncio.sleep(0.01)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 5)
        assert "unknown_open" not in await worker.reconcile("paper")
    finally:
        await worker.close()
