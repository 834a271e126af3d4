"""The Binance front end against details of the documented protocol that a hand-written client
sees (binance-spot-api-docs rest-api.md, errors.md, CHANGELOG.md): which parameters an order
type refuses, the -1100 legal ranges, request weight, expiry reasons, ticker shapes."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from binance_helpers import (
    BTC,
    CHATTY,
    binance,
    call,
    early_in_window,
    front,
    limit_order,
    receive,
    request,
    signed_query,
    socket,
    until,
    ws_signed,
)
from conftest import MakeVenue
from venue_helpers import BINANCE_KEY

from sigma.venues.emulator.server import VenueServer

D = Decimal
WEIGHT = "X-MBX-USED-WEIGHT-1M"
MINUTE = 60_000


async def _refused(server: VenueServer, **override: str) -> dict[str, Any]:
    status, body, _ = await call(server, "POST", "order", limit_order(**override), signed=True)
    assert status == 400, body
    return dict(body)


async def test_parameters_an_order_type_does_not_take_are_refused(
    venue_server: VenueServer,
) -> None:
    market = {"type": "MARKET", "timeInForce": "-", "price": "-"}
    for override, name in (
        ({"type": "MARKET", "price": "-"}, "timeInForce"),
        ({"type": "MARKET", "timeInForce": "-"}, "price"),
        ({**market, "quoteOrderQty": "100"}, "quantity"),
        ({"type": "LIMIT_MAKER"}, "timeInForce"),
        ({"stopPrice": "95000"}, "stopPrice"),
        ({"quoteOrderQty": "100"}, "quoteOrderQty"),
        ({"type": "STOP_LOSS", "timeInForce": "-", "stopPrice": "80000"}, "price"),
    ):
        error = await _refused(venue_server, **override)
        assert error == {"code": -1106, "msg": f"Parameter '{name}' sent when not required."}
    for name, feature in (
        ("icebergQty", "Iceberg"),
        ("trailingDelta", "Trailing stop"),
        ("pegPriceType", "Pegged"),
    ):
        error = await _refused(venue_server, **{name: "1"})
        msg = f"{feature} orders are not supported for this symbol."
        assert error == {"code": -2010, "msg": msg}
    assert venue_server.binance.orders("binance-key") == []
    status, placed, _ = await call(
        venue_server, "POST", "order", limit_order(**market), signed=True
    )
    assert (status, placed["status"], placed["timeInForce"]) == (200, "FILLED", "GTC")


async def test_malformed_values_get_the_legal_range_in_the_message(
    venue_server: VenueServer,
) -> None:
    decimal_range = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
    for override, name, legal in (
        ({"quantity": "-0.01"}, "quantity", decimal_range),
        ({"quantity": "1e-2"}, "quantity", decimal_range),
        ({"price": " 90000"}, "price", decimal_range),
        ({"symbol": "btcusdt"}, "symbol", "^[A-Z0-9-_.]{1,20}$"),
        ({"newClientOrderId": "a" * 37}, "newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$"),
        ({"newClientOrderId": "has.dot"}, "newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$"),
        ({"newOrderRespType": "ALL"}, "newOrderRespType", "ACK, RESULT, FULL"),
    ):
        error = await _refused(venue_server, **override)
        assert error == {
            "code": -1100,
            "msg": f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
        }, override
    for override, name in (
        ({"quantity": "0.010000001"}, "quantity"),
        ({"price": "1.123456789"}, "price"),
    ):
        error = await _refused(venue_server, **override)
        assert error == {"code": -1111, "msg": f"Parameter '{name}' has too much precision."}
    # Trailing zeros add no precision.
    status, _, _ = await call(
        venue_server, "POST", "order", limit_order(quantity="0.010000000000"), signed=True
    )
    assert status == 200
    query = {"symbol": "BTCUSDT", "orderId": "1.5"}
    status, error, _ = await call(venue_server, "GET", "order", query, signed=True)
    assert error["msg"].endswith("parameter 'orderId'; legal range is '^[0-9]{1,20}$'.")
    async with binance(venue_server) as ex:
        with pytest.raises(ccxt_async.BadRequest, match="-1100"):
            await ex.create_order(BTC, "limit", "buy", 0.01, 90000, {"clientOrderId": "a b"})


async def test_successful_orders_and_cancels_cost_no_weight(venue_server: VenueServer) -> None:
    await early_in_window(venue_server, MINUTE)
    status, _, headers = await call(venue_server, "GET", "ping")
    assert headers[WEIGHT] == "1"
    status, placed, headers = await call(venue_server, "POST", "order", limit_order(), signed=True)
    assert (status, headers[WEIGHT]) == (200, "1")
    query = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    status, _, headers = await call(venue_server, "DELETE", "order", query, signed=True)
    assert (status, headers[WEIGHT]) == (200, "1")
    # A refused order or cancel pays its weight.
    status, _, headers = await call(venue_server, "DELETE", "order", query, signed=True)
    assert (status, headers[WEIGHT]) == (400, "2")
    await _refused(venue_server, quantity="0.000001")
    status, _, headers = await call(venue_server, "GET", "ping")
    assert headers[WEIGHT] == headers["X-MBX-USED-WEIGHT"] == "4"


async def test_expired_orders_say_why(venue_server: VenueServer) -> None:
    for tif, reason in (
        ("IOC", "UNFILLED_IOC_QUANTITY_EXPIRED"),
        ("FOK", "UNFILLED_FOK_ORDER_EXPIRED"),
    ):
        status, placed, _ = await call(
            venue_server, "POST", "order", limit_order(timeInForce=tif), signed=True
        )
        assert (placed["status"], placed["expiryReason"]) == ("EXPIRED", reason)
        query = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
        status, fetched, _ = await call(venue_server, "GET", "order", query, signed=True)
        assert fetched["expiryReason"] == reason
    # The book holds 20 levels of 0.05 BTC a side: a 2 BTC market buy takes 1 and expires.
    big = {"type": "MARKET", "timeInForce": "-", "price": "-", "quantity": "2"}
    status, placed, _ = await call(venue_server, "POST", "order", limit_order(**big), signed=True)
    assert (placed["status"], placed["executedQty"]) == ("EXPIRED", "1.00000000")
    assert placed["expiryReason"] == "INSUFFICIENT_LIQUIDITY" and len(placed["fills"]) == 20
    status, resting, _ = await call(venue_server, "POST", "order", limit_order(), signed=True)
    assert resting["status"] == "NEW" and "expiryReason" not in resting
    status, everything, _ = await call(
        venue_server, "GET", "allOrders", {"symbol": "BTCUSDT"}, signed=True
    )
    assert status == 200
    assert [o.get("expiryReason") for o in everything] == [
        "UNFILLED_IOC_QUANTITY_EXPIRED",
        "UNFILLED_FOK_ORDER_EXPIRED",
        "INSUFFICIENT_LIQUIDITY",
        None,
    ]


async def test_day_ticker_mini_and_unknown_types(venue_server: VenueServer) -> None:
    venue_server.binance.tick("BTCUSDT", D("91000"), D("0.5"))
    status, mini, _ = await call(
        venue_server, "GET", "ticker/24hr", {"symbol": "BTCUSDT", "type": "MINI"}
    )
    status, full, _ = await call(venue_server, "GET", "ticker/24hr", {"symbol": "BTCUSDT"})
    # MINI leaves out the change, the average, the previous close, the last quantity and the top
    # of the book.
    dropped = {"priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice"}
    dropped |= {"lastQty", "bidPrice", "bidQty", "askPrice", "askQty"}
    assert set(mini) == set(full) - dropped and len(mini) == 12
    assert (mini["lastPrice"], mini["volume"], mini["count"]) == ("91000.00000000", "0.50000000", 1)
    status, error, _ = await call(
        venue_server, "GET", "ticker/24hr", {"symbol": "BTCUSDT", "type": "BIG"}
    )
    assert (status, error) == (400, {"code": -1139, "msg": "Invalid ticker type."})


async def test_timestamps_may_be_sent_in_microseconds(venue_server: VenueServer) -> None:
    micros = time.time_ns() // 1000
    status, account, _ = await call(
        venue_server, "GET", "account", {"timestamp": micros}, signed=True
    )
    assert status == 200 and account["accountType"] == "SPOT"
    minute = 60_000
    start_ms = venue_server.binance.now_ms() // minute * minute
    venue_server.binance.tick("BTCUSDT", D("91000"), D("1"), time_ms=start_ms + 1)
    params = {"symbol": "BTCUSDT", "interval": "1m", "startTime": start_ms * 1000}
    status, rows, _ = await call(venue_server, "GET", "klines", params)
    assert [row[0] for row in rows] == [start_ms]


async def test_user_stream_reports_expiry_and_its_own_end(venue_server: VenueServer) -> None:
    async with socket(venue_server, "/ws-api/v3?returnRateLimits=false") as ws:
        params = ws_signed({"apiKey": BINANCE_KEY})
        subscribe = {"id": 1, "method": "userDataStream.subscribe.signature", "params": params}
        assert (await request(ws, subscribe))["result"] == {"subscriptionId": 0}
        status, placed, _ = await call(
            venue_server, "POST", "order", limit_order(timeInForce="IOC"), signed=True
        )
        assert status == 200
        reports = []
        while len(reports) < 2:
            frame = await receive(ws)
            if frame["event"]["e"] == "executionReport":
                reports.append(frame["event"])
        assert [(r["x"], r["i"]) for r in reports] == [
            ("NEW", placed["orderId"]),
            ("EXPIRED", placed["orderId"]),
        ]
        assert "eR" not in reports[0] and reports[1]["eR"] == "UNFILLED_IOC_QUANTITY_EXPIRED"
        await ws.send_json({"id": 2, "method": "userDataStream.unsubscribe"})
        frame = await receive(ws)
        while "event" in frame and frame["event"]["e"] != "eventStreamTerminated":
            frame = await receive(ws)
        assert frame == {
            "subscriptionId": 0,
            "event": {"e": "eventStreamTerminated", "E": frame["event"]["E"]},
        }
        assert await receive(ws) == {"id": 2, "status": 200, "result": {}}


async def test_limit_prices_far_from_the_average_fail_percent_price_by_side(
    venue_server: VenueServer,
) -> None:
    status, info, _ = await call(venue_server, "GET", "exchangeInfo", {"symbol": "BTCUSDT"})
    (band,) = [
        f for f in info["symbols"][0]["filters"] if f["filterType"] == "PERCENT_PRICE_BY_SIDE"
    ]
    assert band == {
        "filterType": "PERCENT_PRICE_BY_SIDE",
        "bidMultiplierUp": "5",
        "bidMultiplierDown": "0.2",
        "askMultiplierUp": "5",
        "askMultiplierDown": "0.2",
        "avgPriceMins": 5,
    }
    # Trades at 90000 and 100000 (1 BTC each) make a 95000 average: the band is 19000-475000.
    venue = venue_server.binance
    venue.tick("BTCUSDT", D("90000"), D("1"))
    venue.tick("BTCUSDT", D("100000"), D("1"))
    status, average, _ = await call(venue_server, "GET", "avgPrice", {"symbol": "BTCUSDT"})
    assert (average["mins"], average["price"]) == (5, "95000.00000000")
    failure = {"code": -1013, "msg": "Filter failure: PERCENT_PRICE_BY_SIDE"}
    assert await _refused(venue_server, price="18999.99") == failure
    assert await _refused(venue_server, side="SELL", price="475000.01") == failure
    for side, price in (("BUY", "19000"), ("SELL", "475000")):
        status, placed, _ = await call(
            venue_server, "POST", "order", limit_order(side=side, price=price), signed=True
        )
        assert (status, placed["status"]) == (200, "NEW")
    # Market orders have no price to check.
    market = {"type": "MARKET", "timeInForce": "-", "price": "-"}
    status, _, _ = await call(venue_server, "POST", "order", limit_order(**market), signed=True)
    assert status == 200


async def test_symbol_status_filters_the_trading_markets(venue_server: VenueServer) -> None:
    status, info, _ = await call(venue_server, "GET", "exchangeInfo", {"symbolStatus": "TRADING"})
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    status, info, _ = await call(venue_server, "GET", "exchangeInfo", {"symbolStatus": "HALT"})
    assert (status, info["symbols"]) == (200, [])
    status, prices, _ = await call(venue_server, "GET", "ticker/price", {"symbolStatus": "BREAK"})
    assert (status, prices) == (200, [])
    status, error, _ = await call(
        venue_server, "GET", "depth", {"symbol": "BTCUSDT", "symbolStatus": "HALT"}
    )
    assert (status, error["code"]) == (400, -1220)
    status, error, _ = await call(
        venue_server, "GET", "ticker/bookTicker", {"symbol": "BTCUSDT", "symbolStatus": "OPEN"}
    )
    assert (status, error) == (400, {"code": -1122, "msg": "Invalid symbolStatus."})


async def test_a_shutdown_tells_every_connection_before_closing(
    make_venue_server: MakeVenue,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with make_venue_server() as server:
            raw = await http.ws_connect(f"{server.ws_url}/ws/btcusdt@trade")
            combined = await http.ws_connect(f"{server.ws_url}/stream?streams=btcusdt@trade")
            api = await http.ws_connect(f"{server.ws_url}/ws-api/v3")
            streams = front(server).streams
            await until(lambda: len(streams.sockets) == 3, "three connections")
        event = await receive(raw)
        assert event == {"e": "serverShutdown", "E": event["E"]}
        assert await receive(combined) == {"stream": "!serverShutdown", "data": event}
        assert await receive(api) == {"event": event}
        for ws in (raw, combined, api):
            closing = await ws.receive()
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1001)


async def test_websocket_api_weight_is_shared_with_rest(make_venue_server: MakeVenue) -> None:
    async with make_venue_server(binance={"weight_limit": 10}) as server:
        await early_in_window(server, MINUTE)
        async with socket(server, "/ws-api/v3?returnRateLimits=false") as ws:
            status, _, headers = await call(server, "GET", "ping")
            assert headers[WEIGHT] == "3"  # the connection's 2, then the ping
            assert "rateLimits" not in await request(ws, {"id": 1, "method": "time"})
            shown = await request(
                ws, {"id": 2, "method": "time", "params": {"returnRateLimits": True}}
            )
            assert shown["rateLimits"][0]["count"] == 5
            await request(ws, {"id": 3, "method": "session.subscriptions"})
            await request(ws, {"id": 4, "method": "session.subscriptions"})
            assert (await request(ws, {"id": 5, "method": "ping"}))["status"] == 200  # 10 of 10
            refused = await request(ws, {"id": 6, "method": "ping"})
            assert (refused["status"], refused["error"]["code"]) == (429, -1003)
            assert refused["error"]["msg"].startswith(
                "Too much request weight used; current limit is 10 request weight per 1 MINUTE."
            )
            data = refused["error"]["data"]
            assert data["retryAfter"] > data["serverTime"] > 0
            status, body, _ = await call(server, "GET", "ping")
            assert (status, body["code"]) == (429, -1003)


async def test_a_cancel_report_carries_the_cancel_requests_client_id(
    venue_server: VenueServer,
) -> None:
    async with socket(venue_server, "/ws-api/v3?returnRateLimits=false") as ws:
        params = ws_signed({"apiKey": BINANCE_KEY})
        subscribe = {"id": 1, "method": "userDataStream.subscribe.signature", "params": params}
        assert (await request(ws, subscribe))["status"] == 200
        for client_id in ("first", "second"):
            order = limit_order(newClientOrderId=client_id)
            status, _, _ = await call(venue_server, "POST", "order", order, signed=True)
            assert status == 200
        query = {"symbol": "BTCUSDT", "origClientOrderId": "first", "newClientOrderId": "stop1"}
        status, one, _ = await call(venue_server, "DELETE", "order", query, signed=True)
        assert (one["clientOrderId"], one["origClientOrderId"]) == ("stop1", "first")
        status, rest, _ = await call(
            venue_server, "DELETE", "openOrders", {"symbol": "BTCUSDT"}, signed=True
        )
        (second,) = rest
        assert second["origClientOrderId"] == "second" and len(second["clientOrderId"]) == 22
        canceled = []
        while len(canceled) < 2:
            event = (await receive(ws))["event"]
            if event["e"] == "executionReport" and event["x"] == "CANCELED":
                canceled.append((event["c"], event["C"]))
        assert canceled == [("stop1", "first"), (second["clientOrderId"], "second")]


async def test_historical_trades_page_from_an_id(venue_server: VenueServer) -> None:
    await early_in_window(venue_server, MINUTE)
    for price in ("91000", "91100", "91200", "91300"):
        venue_server.binance.tick("BTCUSDT", D(price), D("0.5"))
    params = {"symbol": "BTCUSDT", "fromId": 2, "limit": 2}
    status, page, headers = await call(venue_server, "GET", "historicalTrades", params)
    assert [(t["id"], t["price"]) for t in page] == [(2, "91100.00000000"), (3, "91200.00000000")]
    assert page[0]["quoteQty"] == "45550.00000000" and headers[WEIGHT] == "25"
    status, latest, _ = await call(
        venue_server, "GET", "historicalTrades", {"symbol": "BTCUSDT", "limit": 1}
    )
    assert (status, [t["id"] for t in latest]) == (200, [4])
    async with binance(venue_server) as ex:
        raw = await ex.publicGetHistoricalTrades({"symbol": "BTCUSDT", "fromId": 3})
        assert [t["id"] for t in raw] == [3, 4]


async def test_an_order_test_runs_the_filters_but_books_nothing(venue_server: VenueServer) -> None:
    await early_in_window(venue_server, MINUTE)
    status, body, _ = await call(
        venue_server, "POST", "order/test", limit_order(quantity="0.000015"), signed=True
    )
    assert (status, body) == (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})
    # Balances are the matching engine's business: a test of an order the account cannot pay
    # for passes.
    status, body, headers = await call(
        venue_server, "POST", "order/test", limit_order(quantity="5"), signed=True
    )
    assert (status, body, headers[WEIGHT]) == (200, {}, "2")
    params = {**limit_order(), "computeCommissionRates": "true"}
    status, rates, headers = await call(venue_server, "POST", "order/test", params, signed=True)
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    assert rates["discount"]["enabledForAccount"] is False and headers[WEIGHT] == "22"
    assert venue_server.binance.orders("binance-key") == []
    account = venue_server.binance.account(BINANCE_KEY)
    assert account is not None and account.balance("USDT") == (D("100000"), 0)


async def test_one_second_klines_come_from_the_tape(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    start = venue.now_ms() // 1000 * 1000 - 5000
    for offset, price in ((0, "91000"), (400, "91500"), (1200, "90500")):
        venue.tick("BTCUSDT", D(price), D("0.5"), time_ms=start + offset)
    params = {"symbol": "BTCUSDT", "interval": "1s", "startTime": start}
    status, rows, _ = await call(venue_server, "GET", "klines", params)
    assert status == 200
    assert [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[8]) for r in rows] == [
        (start, "91000.00000000", "91500.00000000", "91000.00000000", "91500.00000000",
         "1.00000000", start + 999, 2),
        (start + 1000, "90500.00000000", "90500.00000000", "90500.00000000",
         "90500.00000000", "0.50000000", start + 1999, 1),
    ]  # fmt: skip
    async with socket(venue_server, "/ws/btcusdt@kline_1s") as ws:
        await until(lambda: bool(front(venue_server).streams._subscribers), "the subscription")
        venue.tick("BTCUSDT", D("91200"), D("0.25"))
        # The stream may first push the last kline of the trades above, still recent.
        kline = (await receive(ws))["k"]
        while kline["c"] != "91200.00000000":
            kline = (await receive(ws))["k"]
        assert (kline["i"], kline["c"], kline["T"] - kline["t"]) == ("1s", "91200.00000000", 999)


async def test_order_counts_and_commission_rates_of_the_account(venue_server: VenueServer) -> None:
    await early_in_window(venue_server, MINUTE)
    await early_in_window(venue_server, 10_000, needed_ms=5_000)
    for _ in range(2):
        status, _, _ = await call(venue_server, "POST", "order", limit_order(), signed=True)
        assert status == 200
    status, counts, headers = await call(venue_server, "GET", "rateLimit/order", signed=True)
    assert counts == [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 50,
            "count": 2,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": 160000,
            "count": 2,
        },
    ]
    assert headers[WEIGHT] == "40"
    status, rates, _ = await call(
        venue_server, "GET", "account/commission", {"symbol": "BTCUSDT"}, signed=True
    )
    assert rates["symbol"] == "BTCUSDT"
    assert rates["standardCommission"] == {
        "maker": "0.00100000",
        "taker": "0.00100000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    assert set(rates) == {
        "symbol",
        "standardCommission",
        "specialCommission",
        "taxCommission",
        "discount",
    }


async def test_the_average_price_stream_follows_the_trades(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    async with socket(venue_server, "/stream?streams=btcusdt@avgPrice") as ws:
        await until(lambda: bool(front(venue_server).streams._subscribers), "the subscription")
        venue.tick("BTCUSDT", D("90000"), D("1"))
        venue.tick("BTCUSDT", D("91000"), D("3"))
        frame = await receive(ws)
        while frame["data"]["w"] != "90750.00000000":
            frame = await receive(ws)
        assert frame["stream"] == "btcusdt@avgPrice"
        assert (frame["data"]["e"], frame["data"]["s"], frame["data"]["i"]) == (
            "avgPrice",
            "BTCUSDT",
            "5m",
        )
        assert frame["data"]["T"] == venue.tape("BTCUSDT", 1)[0].time_ms


async def test_a_sixth_open_stop_fails_max_num_algo_orders(venue_server: VenueServer) -> None:
    status, info, _ = await call(venue_server, "GET", "exchangeInfo", {"symbol": "BTCUSDT"})
    filters = info["symbols"][0]["filters"]
    assert {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5} in filters
    stop = {"type": "STOP_LOSS_LIMIT", "side": "SELL", "stopPrice": "85000", "price": "84900"}
    for _ in range(5):
        status, placed, _ = await call(
            venue_server, "POST", "order", limit_order(**stop, quantity="0.001"), signed=True
        )
        assert status == 200, placed
    assert await _refused(venue_server, **stop, quantity="0.001") == {
        "code": -1013,
        "msg": "Filter failure: MAX_NUM_ALGO_ORDERS",
    }
    # Plain limit orders do not count against it.
    status, _, _ = await call(venue_server, "POST", "order", limit_order(), signed=True)
    assert status == 200


async def test_the_retired_listen_key_endpoints_answer_gone(venue_server: VenueServer) -> None:
    async with aiohttp.ClientSession() as http:
        for method in ("POST", "PUT", "DELETE"):
            url = f"{venue_server.http_url}/api/v3/userDataStream"
            headers = {"X-MBX-APIKEY": BINANCE_KEY}
            async with http.request(method, url, headers=headers) as reply:
                assert reply.status == 410, method


async def test_cancel_restrictions_keep_orders_in_other_states(venue_server: VenueServer) -> None:
    status, placed, _ = await call(venue_server, "POST", "order", limit_order(), signed=True)
    query = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    for restriction, expected in (
        ("NEW_ONLY", {"code": -1145, "msg": "Invalid cancelRestrictions"}),
        (
            "ONLY_PARTIALLY_FILLED",
            {"code": -2011, "msg": "Order was not canceled due to cancel restrictions."},
        ),
    ):
        status, error, _ = await call(
            venue_server,
            "DELETE",
            "order",
            {**query, "cancelRestrictions": restriction},
            signed=True,
        )
        assert (status, error) == (400, expected)
    status, canceled, _ = await call(
        venue_server, "DELETE", "order", {**query, "cancelRestrictions": "ONLY_NEW"}, signed=True
    )
    assert (status, canceled["status"]) == (200, "CANCELED")


async def test_a_parameter_twice_in_the_query_is_refused(venue_server: VenueServer) -> None:
    status, body, _ = await call(venue_server, "GET", "depth?symbol=BTCUSDT&symbol=ETHUSDT")
    assert (status, body) == (
        400,
        {"code": -1101, "msg": "Duplicate values for a parameter detected."},
    )
    # Once in the query and once in the body is no duplicate: the query's value wins.
    query = signed_query({"symbol": "BTCUSDT"}, body="symbol=DOGEUSDT")
    status, orders, _ = await call(
        venue_server, "POST", f"order/test?{query}", body="symbol=DOGEUSDT"
    )
    assert (status, orders) == (400, {"code": -1102, "msg": orders["msg"]})
    assert "'side'" in orders["msg"]


async def test_rolling_window_tickers(venue_server: VenueServer) -> None:
    venue = venue_server.binance
    now = venue.now_ms()
    venue.tick("BTCUSDT", D("90000"), D("1"), time_ms=now - 2 * 3_600_000)
    venue.tick("BTCUSDT", D("91000"), D("2"), time_ms=now - 60_000)
    params = {"symbol": "BTCUSDT", "windowSize": "1h"}
    status, hour, headers = await call(venue_server, "GET", "ticker", params)
    assert (status, headers[WEIGHT]) == (200, "4")
    assert (hour["openPrice"], hour["volume"], hour["count"]) == (
        "91000.00000000",
        "2.00000000",
        1,
    )
    assert hour["openTime"] % 60_000 == 0 and "bidPrice" not in hour and "lastQty" not in hour
    status, day, _ = await call(venue_server, "GET", "ticker", {"symbols": '["BTCUSDT"]'})
    assert [(t["openPrice"], t["volume"]) for t in day] == [("90000.00000000", "3.00000000")]
    for params, code in (
        ({"symbol": "BTCUSDT", "windowSize": "24h"}, -1130),
        ({"symbol": "BTCUSDT", "windowSize": "1d2h"}, -1130),
        ({"windowSize": "1h"}, -1102),
    ):
        status, error, _ = await call(venue_server, "GET", "ticker", params)
        assert (status, error["code"]) == (400, code), params


async def test_stream_requests_need_an_id_binance_accepts(make_venue_server: MakeVenue) -> None:
    async with make_venue_server(binance=CHATTY) as server, socket(server, "/ws") as ws:
        for rid in ("a-b", True, 2**63, {"n": 1}):
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": rid})
            error = (await receive(ws))["error"]
            assert error == {
                "code": 2,
                "msg": "Invalid request: request ID must be an unsigned integer",
            }, rid
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS"})
        assert (await receive(ws))["error"]["code"] == 2
        for rid in (None, -1, "abc123"):
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": rid})
            assert await receive(ws) == {"result": [], "id": rid}


async def test_exchange_info_filters_by_permission(venue_server: VenueServer) -> None:
    for permissions, listed in (
        ("SPOT", ["BTCUSDT", "ETHUSDT"]),
        ('["MARGIN","SPOT"]', ["BTCUSDT", "ETHUSDT"]),
        ('["MARGIN"]', []),
        ("TRD_GRP_004", []),
    ):
        status, info, _ = await call(
            venue_server, "GET", "exchangeInfo", {"permissions": permissions}
        )
        assert (status, [s["symbol"] for s in info["symbols"]]) == (200, listed), permissions
    status, info, _ = await call(
        venue_server, "GET", "exchangeInfo", {"symbol": "BTCUSDT", "showPermissionSets": "false"}
    )
    assert info["symbols"][0]["permissionSets"] == []
    status, info, _ = await call(venue_server, "GET", "exchangeInfo", {"symbol": "BTCUSDT"})
    assert info["symbols"][0]["permissionSets"] == [["SPOT"]]
    status, error, _ = await call(venue_server, "GET", "exchangeInfo", {"permissions": "[SPOT"})
    assert (status, error["code"]) == (400, -1100)


async def test_a_market_orders_notional_is_priced_at_the_average(
    venue_server: VenueServer,
) -> None:
    venue = venue_server.binance
    venue.tick("BTCUSDT", D("90000"), D("1"), time_ms=venue.now_ms() - 120_000)
    venue.tick("BTCUSDT", D("100000"), D("0.001"))
    # 0.00005 BTC is 5 USDT at the last price but 4.50 at the average (90009.99): too small.
    market = {"type": "MARKET", "timeInForce": "-", "price": "-", "quantity": "0.00005"}
    assert await _refused(venue_server, **market) == {
        "code": -1013,
        "msg": "Filter failure: NOTIONAL",
    }
    status, placed, _ = await call(
        venue_server, "POST", "order", limit_order(**{**market, "quantity": "0.00006"}), signed=True
    )
    assert (status, placed["status"]) == (200, "FILLED")


async def test_last_price_is_the_last_trades(venue_server: VenueServer) -> None:
    market = {"type": "MARKET", "timeInForce": "-", "price": "-"}
    status, placed, _ = await call(
        venue_server, "POST", "order", limit_order(**market), signed=True
    )
    fill = placed["fills"][-1]["price"]
    assert status == 200 and fill != "92000.00000000"  # the book's ask, not the path's price
    status, trades, _ = await call(venue_server, "GET", "trades", {"symbol": "BTCUSDT"})
    status, price, _ = await call(venue_server, "GET", "ticker/price", {"symbol": "BTCUSDT"})
    status, day, _ = await call(venue_server, "GET", "ticker/24hr", {"symbol": "BTCUSDT"})
    assert trades[-1]["price"] == price["price"] == day["lastPrice"] == fill


# Pongs count as messages: ten a second is over Binance's five, hence CHATTY's rate.
BEAT = {"ping_every_ms": 100, "pong_timeout_ms": 450, **CHATTY}


async def _pings(ws: aiohttp.ClientWebSocketResponse, count: int, answer: bool) -> None:
    """Read `count` pings from the venue (answering each when `answer`), within a deadline."""
    seen = 0
    while seen < count:
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.PING, message
        seen += 1
        if answer:
            await ws.pong(message.data)


@pytest.mark.parametrize("path", ["/ws/btcusdt@trade", "/ws-api/v3"])
async def test_a_connection_that_answers_pings_stays(
    make_venue_server: MakeVenue, path: str
) -> None:
    async with aiohttp.ClientSession() as http, make_venue_server(binance=BEAT) as server:
        ws = await http.ws_connect(f"{server.ws_url}{path}", autoping=False)
        # Ten pings a tenth of a second apart: twice the timeout, every one answered.
        await _pings(ws, 10, answer=True)
        assert not ws.closed
        assert len(front(server).streams.sockets) == 1
        await ws.close()


@pytest.mark.parametrize("path", ["/ws/btcusdt@trade", "/ws-api/v3"])
async def test_a_connection_whose_pings_go_unanswered_is_cut(
    make_venue_server: MakeVenue, path: str
) -> None:
    async with aiohttp.ClientSession() as http, make_venue_server(binance=BEAT) as server:
        ws = await http.ws_connect(f"{server.ws_url}{path}", autoping=False)
        opened = time.monotonic()
        # Pongs nobody asked for do not keep a connection (web-socket-streams.md).
        message = await ws.receive(timeout=5)
        while message.type is aiohttp.WSMsgType.PING:
            await ws.pong(b"unsolicited")
            message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        assert time.monotonic() - opened >= 0.45  # not before the timeout
        await until(lambda: not front(server).streams.sockets, "the socket forgotten")


async def test_a_client_ping_gets_its_payload_back(venue_server: VenueServer) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{venue_server.ws_url}/ws/btcusdt@trade", autoping=False)
        await ws.ping(b"are you there")
        message = await ws.receive(timeout=5)
        assert (message.type, message.data) == (aiohttp.WSMsgType.PONG, b"are you there")
        await ws.close()
