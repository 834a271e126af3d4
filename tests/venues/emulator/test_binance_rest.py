"""The Binance front end's REST API through the real ccxt client, and raw requests for what
ccxt hides (headers, error bodies, parameters ccxt never sends)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from binance_helpers import (
    BTC,
    balance,
    binance,
    call,
    early_in_window,
    front,
    limit_order,
    signed_query,
    until,
)
from conftest import MakeVenue
from venue_helpers import BINANCE_KEY, BINANCE_KEY_2, BINANCE_SECRET_2

from sigma.venues.emulator.binance import BinanceSettings, ccxt_config, default_markets
from sigma.venues.emulator.model import OrderStatus
from sigma.venues.emulator.server import VenueServer

D = Decimal


# ----------------------------------------------------------------- market data
async def test_markets_carry_binance_filters_and_precisions(venue_server: VenueServer) -> None:
    async with binance(venue_server) as ex:
        markets = await ex.load_markets()
        assert set(markets) == {"BTC/USDT", "ETH/USDT"}
        btc = markets[BTC]
        assert btc["spot"] and btc["active"] and btc["id"] == "BTCUSDT"
        assert btc["precision"] == {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
        assert btc["limits"]["amount"] == {"min": 1e-05, "max": 9000.0}
        assert btc["limits"]["cost"]["min"] == 5.0
        assert abs(await ex.fetch_time() - venue_server.binance.now_ms()) < 5000
        info = await ex.publicGetExchangeInfo({"symbols": json.dumps(["ETHUSDT"])})
        assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
        kinds = {f["filterType"] for f in info["symbols"][0]["filters"]}
        assert kinds == {
            "PRICE_FILTER",
            "LOT_SIZE",
            "MARKET_LOT_SIZE",
            "PERCENT_PRICE_BY_SIDE",
            "NOTIONAL",
            "MAX_NUM_ORDERS",
            "MAX_NUM_ALGO_ORDERS",
        }
        limits = {(r["rateLimitType"], r["interval"]): r["limit"] for r in info["rateLimits"]}
        assert limits == {
            ("REQUEST_WEIGHT", "MINUTE"): 6000,
            ("ORDERS", "SECOND"): 50,
            ("ORDERS", "DAY"): 160_000,
        }
        with pytest.raises(ccxt_async.BadSymbol):
            await ex.publicGetExchangeInfo({"symbol": "DOGEUSDT"})


async def test_book_trades_and_tickers_follow_the_price(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    venue.tick("BTCUSDT", D("91000"), D("0.5"))
    venue.tick("BTCUSDT", D("91100"), D("0.25"))
    async with binance(venue_server) as ex:
        book = await ex.fetch_order_book(BTC, 5)
        assert len(book["bids"]) == 5 and book["bids"][0][0] < 91100 < book["asks"][0][0]
        assert book["nonce"] == front(venue_server).versions["BTCUSDT"] > 0
        trades = await ex.fetch_trades(BTC)
        assert [(t["price"], t["amount"]) for t in trades] == [(91000, 0.5), (91100, 0.25)]
        raw = await ex.publicGetTrades({"symbol": "BTCUSDT", "limit": 1})
        assert raw[0]["price"] == "91100.00000000" and raw[0]["qty"] == "0.25000000"
        ticker = await ex.fetch_ticker(BTC)
        assert ticker["last"] == 91100 and ticker["high"] == 91100 and ticker["low"] == 91000
        assert ticker["baseVolume"] == 0.75 and ticker["bid"] == book["bids"][0][0]
        tickers = await ex.fetch_tickers()
        assert tickers["ETH/USDT"]["last"] == 3000
        prices = await ex.fetch_last_prices()
        assert prices[BTC]["price"] == 91100
        tops = await ex.fetch_bids_asks([BTC])
        assert tops[BTC]["ask"] == book["asks"][0][0]
        average = await ex.publicGetAvgPrice({"symbol": "BTCUSDT"})
        expected = (D("91000") * D("0.5") + D("91100") * D("0.25")) / D("0.75")
        assert D(average["price"]) == expected.quantize(D("0.00000001"))
        both = await ex.publicGetTicker24hr({"symbols": json.dumps(["BTCUSDT", "ETHUSDT"])})
        assert [t["symbol"] for t in both] == ["BTCUSDT", "ETHUSDT"]


async def test_klines_fold_one_minute_candles_into_each_interval(
    venue_server: VenueServer,
) -> None:
    venue = venue_server.binance
    minute = 60_000
    start = venue.now_ms() // (7 * 86_400_000) * (7 * 86_400_000) - 3 * minute
    for i, price in enumerate(("91000", "91500", "90500", "91200")):
        venue.tick("BTCUSDT", D(price), D(1), time_ms=start + i * minute)
    async with binance(venue_server) as ex:
        ones = await ex.fetch_ohlcv(BTC, "1m", since=start)
        assert [c[4] for c in ones] == [91000, 91500, 90500, 91200]
        assert ones[0][0] == start
        latest = await ex.fetch_ohlcv(BTC, "1m", limit=2)
        assert [c[4] for c in latest] == [90500, 91200]
        for frame in ("1h", "1d", "1w", "1M"):
            bars = await ex.fetch_ohlcv(BTC, frame)
            high, low = max(b[2] for b in bars), min(b[3] for b in bars)
            assert (high, low) == (91500, 90500), frame
            assert sum(b[5] for b in bars) == 4, frame
        rows = await ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "3m", "limit": 1000})
        assert rows[0][6] - rows[0][0] == 3 * minute - 1
        with pytest.raises(ccxt_async.BadRequest, match="-1120"):
            await ex.publicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})


# ----------------------------------------------------------------- orders
async def test_market_orders_pay_fees_in_what_they_receive(venue_server: VenueServer) -> None:
    async with binance(venue_server) as ex:
        buy = await ex.create_order(BTC, "market", "buy", 0.01)
        assert buy["status"] == "closed" and buy["filled"] == 0.01
        assert buy["fee"] == {"currency": "BTC", "cost": 1e-05}
        assert buy["trades"][0]["price"] == 92009.2
        assert balance(venue_server, "BTC") == (D("1.00999"), 0)
        assert balance(venue_server, "USDT") == (D("100000") - D("920.092"), 0)
        sell = await ex.create_order(BTC, "market", "sell", 0.02)
        assert sell["fee"]["currency"] == "USDT"
        proceeds = D("0.02") * D("91990.80")
        assert balance(venue_server, "USDT") == (
            D("100000") - D("920.092") + proceeds - proceeds * D("0.001"),
            0,
        )
        assert balance(venue_server, "BTC") == (D("0.98999"), 0)
        spend = await ex.create_order(BTC, "market", "buy", None, params={"cost": 100})
        assert spend["filled"] > 0 and 99 < spend["cost"] <= 100
        fetched = await ex.fetch_balance()
        free, _ = balance(venue_server, "BTC")
        assert D(str(fetched["BTC"]["free"])) == free


async def test_limit_rests_fills_over_price_moves_then_is_cancelled(
    venue_server: VenueServer,
) -> None:
    venue = venue_server.binance
    async with binance(venue_server) as ex:
        order = await ex.create_order(BTC, "limit", "buy", 0.12, 91000)
        assert order["status"] == "open" and order["filled"] == 0
        assert balance(venue_server, "USDT") == (D("100000") - D("10920"), D("10920"))
        venue.tick("BTCUSDT", D("91000"), D("1"))
        venue.tick("BTCUSDT", D("90990"), D("1"))
        fetched = await ex.fetch_order(order["id"], BTC)
        assert fetched["status"] == "open" and fetched["filled"] == 0.1
        assert fetched["remaining"] == pytest.approx(0.02)
        (open_order,) = await ex.fetch_open_orders(BTC)
        assert open_order["id"] == order["id"]
        canceled = await ex.cancel_order(order["id"], BTC)
        assert canceled["status"] == "canceled"
        assert balance(venue_server, "USDT") == (D("100000") - D("0.1") * D("91000"), 0)
        assert balance(venue_server, "BTC") == (D("1.0999"), 0)
        trades = await ex.fetch_my_trades(BTC)
        assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
            (91000, 0.05, "maker"),
            (91000, 0.05, "maker"),
        ]
        assert trades[0]["fee"] == {"currency": "BTC", "cost": 5e-05}
        by_order = await ex.fetch_my_trades(BTC, params={"orderId": order["id"]})
        assert len(by_order) == 2
        assert [o["status"] for o in await ex.fetch_orders(BTC)] == ["canceled"]
        with pytest.raises(ccxt_async.OrderNotFound):
            await ex.cancel_order(order["id"], BTC)


async def test_stops_wait_for_their_trigger_then_execute(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    async with binance(venue_server) as ex:
        stop = await ex.create_order(BTC, "market", "sell", 0.02, params={"stopLossPrice": 90000})
        assert stop["info"]["type"] == "STOP_LOSS" and stop["status"] == "open"
        assert balance(venue_server, "BTC") == (D("0.98"), D("0.02"))
        profit = await ex.create_order(
            BTC, "limit", "sell", 0.01, 95000, params={"takeProfitPrice": 95000}
        )
        assert profit["info"]["type"] == "TAKE_PROFIT_LIMIT"
        venue.tick("BTCUSDT", D("89999"), D("1"))
        done = await ex.fetch_order(stop["id"], BTC)
        assert done["status"] == "closed" and done["filled"] == 0.02
        assert done["triggerPrice"] == 90000
        assert balance(venue_server, "BTC") == (D("0.97"), D("0.01"))
        with pytest.raises(ccxt_async.OrderImmediatelyFillable):
            await ex.create_order(BTC, "market", "sell", 0.01, params={"stopLossPrice": 95000})
        with pytest.raises(ccxt_async.OrderImmediatelyFillable):
            await ex.create_order(BTC, "limit", "buy", 0.01, 95000, params={"postOnly": True})
        maker = await ex.create_order(BTC, "limit", "buy", 0.01, 80000, params={"postOnly": True})
        assert maker["info"]["type"] == "LIMIT_MAKER" and maker["postOnly"]
        canceled = await ex.cancel_all_orders(BTC)
        assert {o["id"] for o in canceled} == {profit["id"], maker["id"]}
        with pytest.raises(ccxt_async.OrderNotFound):
            await ex.cancel_all_orders(BTC)


async def test_refusals_map_to_binance_codes_and_ccxt_errors(venue_server: VenueServer) -> None:
    async with binance(venue_server) as ex:
        with pytest.raises(ccxt_async.BadRequest, match="Filter failure: NOTIONAL"):
            await ex.create_order(BTC, "limit", "buy", 0.00001, 90000)
        with pytest.raises(ccxt_async.InvalidOrder, match="PRICE_FILTER"):
            await ex.privatePostOrder(limit_order(price="90000.005"))
        with pytest.raises(ccxt_async.InvalidOrder, match="LOT_SIZE"):
            await ex.privatePostOrder(limit_order(quantity="0.000015"))
        await ex.create_order(BTC, "limit", "buy", 0.01, 90000, params={"clientOrderId": "twice"})
        with pytest.raises(ccxt_async.InvalidOrder, match="Duplicate order sent"):
            await ex.create_order(
                BTC, "limit", "buy", 0.01, 90000, params={"clientOrderId": "twice"}
            )
        found = await ex.fetch_order(None, BTC, params={"origClientOrderId": "twice"})
        assert found["clientOrderId"] == "twice" and found["status"] == "open"
        with pytest.raises(ccxt_async.OrderNotFound):
            await ex.fetch_order("999999", BTC)
        with pytest.raises(ccxt_async.BadSymbol):
            await ex.privateGetOpenOrders({"symbol": "DOGEUSDT"})
    async with binance(venue_server, BINANCE_KEY_2, BINANCE_SECRET_2) as poor:
        with pytest.raises(ccxt_async.InsufficientFunds):
            await poor.create_order(BTC, "market", "buy", 0.5)
        with pytest.raises(ccxt_async.InsufficientFunds):
            await poor.create_order(BTC, "limit", "sell", 0.01, 95000)


# ----------------------------------------------------------------- signing
async def test_signed_requests_are_authenticated(venue_server: VenueServer) -> None:
    async with binance(venue_server, secret="wrong") as ex:
        with pytest.raises(ccxt_async.AuthenticationError, match="-1022"):
            await ex.fetch_balance()
    async with binance(venue_server, key="nobody") as ex:
        with pytest.raises(ccxt_async.AuthenticationError, match="-2015"):
            await ex.fetch_balance()
    status, body, _ = await call(venue_server, "GET", "account", signed=True, key=None)
    assert (status, body["code"]) == (401, -2014)
    status, body, _ = await call(venue_server, "GET", "account", {"recvWindow": 60001}, signed=True)
    assert (status, body["code"]) == (400, -1102)
    status, body, _ = await call(venue_server, "GET", "account", {"signature": "x" * 64})
    assert body == {"code": -1022, "msg": "Signature for this request is not valid."}
    venue_server.faults.clock_skew_ms = 30_000
    async with binance(venue_server) as ex:
        with pytest.raises(ccxt_async.InvalidNonce, match="outside of the recvWindow"):
            await ex.fetch_balance()
        venue_server.faults.clock_skew_ms = -30_000
        with pytest.raises(ccxt_async.InvalidNonce, match="ahead of the server"):
            await ex.fetch_balance()
        venue_server.faults.clock_skew_ms = 0
        assert (await ex.fetch_balance())["USDT"]["free"] == 100000


async def test_raw_protocol_details(venue_server: VenueServer) -> None:
    await early_in_window(venue_server, 60_000)
    status, body, headers = await call(venue_server, "GET", "ping")
    assert (status, body, headers["X-MBX-USED-WEIGHT-1M"]) == (200, {}, "1")
    status, body, headers = await call(venue_server, "GET", "depth", {"symbol": "XYZ"})
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    assert headers["X-MBX-USED-WEIGHT-1M"] == "6"
    status, body, _ = await call(venue_server, "GET", "depth")
    assert body["code"] == -1102 and "'symbol'" in body["msg"]
    order = limit_order()
    # Parameters in the form body, signed together with the query string.
    body_text = "&".join(f"{k}={v}" for k, v in order.items()) + "&newOrderRespType=RESULT"
    query = signed_query({}, body=body_text)
    status, placed, headers = await call(venue_server, "POST", f"order?{query}", body=body_text)
    assert status == 200 and placed["status"] == "NEW" and "fills" not in placed
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1" and headers["X-MBX-ORDER-COUNT-1D"] == "1"
    ack = {**order, "price": "89000", "newOrderRespType": "ACK"}
    status, acked, _ = await call(venue_server, "POST", "order", ack, signed=True)
    assert set(acked) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    for bad, code in (
        ({"side": "UP"}, -1117),
        ({"type": "ICEBERG"}, -1116),
        ({"timeInForce": "GTD"}, -1115),
        ({"timeInForce": ""}, -1102),
        ({"price": "abc"}, -1100),
        ({"price": ""}, -1102),
        ({"type": "MARKET", "quantity": "", "timeInForce": "", "price": ""}, -1102),
        ({"type": "STOP_LOSS_LIMIT"}, -1102),
        ({"type": "LIMIT", "quantity": ""}, -1102),
    ):
        status, error, _ = await call(
            venue_server, "POST", "order", limit_order(**bad), signed=True
        )
        assert (status, error["code"]) == (400, code), bad
    status, tested, _ = await call(venue_server, "POST", "order/test", order, signed=True)
    assert (status, tested) == (200, {})
    status, error, _ = await call(venue_server, "GET", "order", {"symbol": "BTCUSDT"}, signed=True)
    assert error["code"] == -1102
    query = {"symbol": "BTCUSDT", "orderId": placed["orderId"], "origClientOrderId": "other"}
    status, error, _ = await call(venue_server, "GET", "order", query, signed=True)
    assert error == {"code": -2039, "msg": "Client order ID is not correct for this order ID."}
    status, error, _ = await call(venue_server, "DELETE", "order", query, signed=True)
    assert error == {"code": -2011, "msg": "Unknown order sent."}
    query = {**query, "origClientOrderId": placed["clientOrderId"], "newClientOrderId": "c1"}
    status, canceled, _ = await call(venue_server, "DELETE", "order", query, signed=True)
    assert canceled["clientOrderId"] == "c1" and canceled["status"] == "CANCELED"
    status, account, _ = await call(
        venue_server, "GET", "account", {"omitZeroBalances": "true"}, signed=True
    )
    assert {b["asset"] for b in account["balances"]} == {"BTC", "ETH", "USDT"}
    assert account["commissionRates"]["maker"] == "0.00100000" and account["canTrade"]
    status, everything, _ = await call(venue_server, "GET", "openOrders", signed=True)
    assert [o["orderId"] for o in everything] == [acked["orderId"]]
    status, error, _ = await call(venue_server, "GET", "ticker/price", {"symbols": "[BTC"})
    assert error["code"] == -1100
    status, prices, headers = await call(venue_server, "GET", "ticker/price")
    assert [p["symbol"] for p in prices] == ["BTCUSDT", "ETHUSDT"]
    status, error, _ = await call(
        venue_server, "GET", "trades", {"symbol": "BTCUSDT", "limit": "x"}
    )
    assert error["code"] == -1100


async def test_order_history_pages_by_id_and_time(venue_server: VenueServer) -> None:
    async with binance(venue_server) as ex:
        first = await ex.create_order(BTC, "market", "buy", 0.01)
        second = await ex.create_order(BTC, "market", "buy", 0.06)
        orders = await ex.fetch_orders(BTC, params={"orderId": second["id"]})
        assert [o["id"] for o in orders] == [second["id"]]
        since = await ex.fetch_orders(BTC, since=first["timestamp"], limit=1)
        assert [o["id"] for o in since] == [first["id"]]
        trades = await ex.fetch_my_trades(BTC)
        assert [t["order"] for t in trades] == [first["id"], second["id"], second["id"]]
        later = await ex.fetch_my_trades(BTC, params={"fromId": trades[1]["id"]})
        assert len(later) == 2
        first = trades[0]["timestamp"]
        window = await ex.fetch_my_trades(BTC, since=first - 1, params={"endTime": first})
        assert len(window) == 3 - sum(t["timestamp"] > trades[0]["timestamp"] for t in trades)
        agg = await ex.publicGetAggTrades({"symbol": "BTCUSDT", "fromId": 2})
        assert [a["a"] for a in agg] == [2, 3]
        agg = await ex.publicGetAggTrades({"symbol": "BTCUSDT", "startTime": 0, "endTime": 1})
        assert agg == []
        with pytest.raises(ccxt_async.BadRequest, match="-1127"):
            await ex.fetch_orders(BTC, since=first - 86_400_001, params={"endTime": first})


# ----------------------------------------------------------------- limits and faults
async def test_weight_over_the_limit_is_refused_429_then_banned_418(
    make_venue_server: MakeVenue,
) -> None:
    settings = BinanceSettings(weight_limit=50, weight_window_ms=60_000, ban_after=1)
    async with make_venue_server(binance=settings) as server:
        await early_in_window(server, 60_000)
        for used in ("20", "40"):
            status, _, headers = await call(server, "GET", "exchangeInfo")
            assert headers["X-MBX-USED-WEIGHT-1M"] == used
        status, body, headers = await call(server, "GET", "exchangeInfo")
        assert (status, body["code"]) == (429, -1003)
        assert "current limit is 50 request weight per 1 MINUTE" in body["msg"]
        assert int(headers["Retry-After"]) >= 1
        async with binance(server) as ex:
            # Sending on after a 429 is refused again, then banned (ban_after=1).
            with pytest.raises(ccxt_async.DDoSProtection, match="429"):
                await ex.fetch_time()
            with pytest.raises(ccxt_async.DDoSProtection, match="418"):
                await ex.fetch_time()
        status, body, headers = await call(server, "GET", "ping")
        assert status == 418 and "IP banned until" in body["msg"]
        assert int(headers["Retry-After"]) == 120


async def test_new_orders_over_the_order_rate_are_refused(make_venue_server: MakeVenue) -> None:
    async with make_venue_server(binance=BinanceSettings(orders_per_10s=2)) as server:
        for _ in range(2):
            status, _, _ = await call(server, "POST", "order", limit_order(), signed=True)
            assert status == 200
        status, body, headers = await call(server, "POST", "order", limit_order(), signed=True)
        assert (status, body["code"]) == (429, -1015)
        assert body["msg"] == "Too many new orders; current limit is 2 orders per 10 SECOND."
        assert headers["X-MBX-ORDER-COUNT-10S"] == "3" and "Retry-After" in headers


async def test_faults_switch_on_and_off(venue_server: VenueServer) -> None:
    faults = venue_server.faults
    async with binance(venue_server) as ex:
        await ex.load_markets()
        faults.latency_ms = 150
        started = asyncio.get_running_loop().time()
        await ex.fetch_time()
        assert asyncio.get_running_loop().time() - started >= 0.15
        faults.latency_ms = 0
        faults.error_5xx = 1
        # 503 with Binance's -1001 body: ccxt 4.5.90 maps -1001 to OperationFailed.
        with pytest.raises(ccxt_async.OperationFailed, match="-1001"):
            await ex.fetch_time()
        await ex.fetch_time()
        faults.drop_after_accept = 1
        with pytest.raises(ccxt_async.NetworkError):
            await ex.create_order(
                BTC, "limit", "buy", 0.01, 90000, params={"clientOrderId": "lost"}
            )
        found = await ex.fetch_order(None, BTC, params={"origClientOrderId": "lost"})
        assert found["status"] == "open"
        orders = venue_server.binance.orders(BINANCE_KEY, "BTCUSDT")
        assert [o.client_id for o in orders] == ["lost"]
        assert orders[0].status is OrderStatus.NEW


async def test_a_rate_limit_storm_refuses_until_the_window_ends(
    make_venue_server: MakeVenue,
) -> None:
    window = 1000
    settings = BinanceSettings(weight_window_ms=window)
    async with make_venue_server(binance=settings) as server, binance(server) as ex:
        await ex.fetch_time()
        server.faults.rate_limit_storm = 1
        with pytest.raises(ccxt_async.DDoSProtection, match="429"):
            await ex.fetch_time()
        assert server.faults.rate_limit_storm == 0
        # The storm's 429 counts as a refusal: the client waits out the window.
        start = server.binance.now_ms() // window
        await until(lambda: server.binance.now_ms() // window > start, "the next window")
        assert await ex.fetch_time() > 0


def test_default_markets_and_ccxt_config_are_spot_only() -> None:
    btc, eth = default_markets()
    assert (btc.symbol, btc.level_qty, btc.start_price) == ("BTCUSDT", D("0.05"), D("92000"))
    assert (eth.symbol, eth.step_size, eth.level_qty) == ("ETHUSDT", D("0.0001"), D(1))
    config: dict[str, Any] = ccxt_config("http://h:1", "ws://h:1")
    api = config["urls"]["api"]
    assert api["public"] == api["private"] == "http://h:1/api/v3"
    assert api["ws"]["spot"] == "ws://h:1/ws"
    assert api["ws"]["ws-api"] == {"spot": "ws://h:1/ws-api/v3"}
    assert all(str(url).startswith(("http://h:1", "ws://h:1")) for url in _urls(api))
    assert config["options"]["fetchMarkets"] == {"types": ["spot"]}


def _urls(tree: Any) -> list[str]:
    if isinstance(tree, dict):
        return [url for value in tree.values() for url in _urls(value)]
    return [tree]


@pytest.mark.parametrize(
    ("options", "taken"),
    [
        ({}, True),
        ({"orderId": "1"}, True),
        ({"startTime": "1"}, True),
        ({"endTime": "9999999999999"}, True),
        ({"fromId": "1"}, True),
        ({"startTime": "1", "endTime": "2"}, True),
        ({"orderId": "1", "fromId": "1"}, True),
        ({"fromId": "1", "startTime": "1"}, False),
        ({"fromId": "1", "endTime": "9999999999999"}, False),
        ({"orderId": "1", "startTime": "1"}, False),
        ({"orderId": "1", "startTime": "1", "endTime": "2"}, False),
    ],
)
async def test_my_trades_takes_only_the_documented_combinations_of_options(
    venue_server: VenueServer, options: dict[str, str], taken: bool
) -> None:
    # rest-api.md lists the combinations myTrades supports; ccxt: "The parameter fromId
    # cannot be sent with startTime or endTime".
    status, body, _ = await call(
        venue_server, "GET", "myTrades", {"symbol": "BTCUSDT", **options}, signed=True
    )
    if taken:
        assert (status, body) == (200, [])
    else:
        assert (status, body) == (
            400,
            {"code": -1128, "msg": "Combination of optional parameters invalid."},
        )


@pytest.mark.parametrize(
    ("method", "path", "params", "sent"),
    [
        # ccxt#8450 and bt-ccxt-store#43: an order carrying a 'created' Binance never reads
        ("POST", "order", {**limit_order(), "created": "1613138460000"}, 9),
        ("POST", "order/test", {**limit_order(), "timeInforce": "GTC"}, 9),
        ("GET", "order", {"symbol": "BTCUSDT", "orderId": "1", "clientOrderId": "x"}, 5),
        ("DELETE", "order", {"symbol": "BTCUSDT", "orderId": "1", "x": "1"}, 5),
        ("GET", "openOrders", {"symbol": "BTCUSDT", "limit": "5"}, 4),
        ("DELETE", "openOrders", {"symbol": "BTCUSDT", "orderId": "1"}, 4),
        ("GET", "allOrders", {"symbol": "BTCUSDT", "fromId": "1"}, 4),
        ("GET", "myTrades", {"symbol": "BTCUSDT", "interval": "1m", "recvWindow": "5000"}, 5),
        ("GET", "account", {"symbol": "BTCUSDT"}, 3),
        ("GET", "account/commission", {"symbol": "BTCUSDT", "omitZeroBalances": "true"}, 4),
        ("GET", "rateLimit/order", {"symbol": "BTCUSDT"}, 3),
    ],
)
async def test_a_signed_request_with_a_parameter_the_endpoint_does_not_read_is_1104(
    venue_server: VenueServer, method: str, path: str, params: dict[str, str], sent: int
) -> None:
    # errors.md -1104 "Not all sent parameters were read; read '%s' parameter(s) but was sent
    # '%s'.": the counts include timestamp and signature (binance-connector-python#172: six
    # parameters, one misspelt, "read '7' parameter(s) but was sent '8'").
    status, body, _ = await call(venue_server, method, path, params, signed=True)
    assert (status, body) == (
        400,
        {
            "code": -1104,
            "msg": f"Not all sent parameters were read; read '{sent - 1}' parameter(s) but "
            f"was sent '{sent}'.",
        },
    )
    assert not venue_server.binance.orders(BINANCE_KEY)


async def test_every_parameter_an_endpoint_reads_passes(venue_server: VenueServer) -> None:
    order = {
        **limit_order(),
        "newClientOrderId": "c1",
        "newOrderRespType": "RESULT",
        "selfTradePreventionMode": "NONE",
        "strategyId": "1",
        "strategyType": "1000000",
        "recvWindow": "5000",
    }
    status, body, _ = await call(venue_server, "POST", "order", order, signed=True)
    assert status == 200, body
    status, body, _ = await call(
        venue_server,
        "GET",
        "myTrades",
        {"symbol": "BTCUSDT", "startTime": "1", "limit": "5", "recvWindow": "5000"},
        signed=True,
    )
    assert status == 200, body


async def test_klines_limit_is_held_to_one_to_a_thousand(venue_server: VenueServer) -> None:
    # rest-api.md klines "limit: Default 500; Maximum 1000": limit=0 served every candle.
    venue = venue_server.binance
    start = venue.now_ms() // 60_000 * 60_000 - 3 * 60_000
    for i in range(3):
        venue.tick("BTCUSDT", D("91000") + i, D(1), time_ms=start + i * 60_000)
    for limit, rows in (("0", 1), ("2", 2), ("5000", 3)):
        status, body, _ = await call(
            venue_server, "GET", "klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": limit}
        )
        assert (status, len(body)) == (200, rows), limit
