"""The Upbit front end's REST API through the real ccxt (``ccxt.async_support.upbit``) over a
real socket, and raw requests for what ccxt hides (headers, error bodies)."""

from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, ROUND_UP, Decimal

import ccxt.async_support as ccxt_async
import pytest
from upbit_helpers import BTC, call, token, upbit
from venue_helpers import UPBIT_KEY, UPBIT_KEY_2, UPBIT_SECRET_2

from sigma.venues.emulator.server import VenueServer
from sigma.venues.emulator.upbit import UpbitSettings

D = Decimal
FEE = D("0.0005")


def _fee(amount: Decimal) -> Decimal:
    return (amount * FEE).quantize(D("0.00000001"), rounding=ROUND_UP)


def _balance(server: VenueServer, asset: str) -> tuple[Decimal, Decimal]:
    return server.upbit.accounts[UPBIT_KEY].balance(asset)


async def test_quotation_markets_tickers_book_trades_and_candles(venue_server: VenueServer) -> None:
    venue_server.upbit.tick("KRW-BTC", D(130_100_000), D("0.5"))
    venue_server.upbit.tick("KRW-BTC", D(130_200_000), D("0.25"))
    async with upbit(venue_server) as ex:
        markets = await ex.load_markets()
        assert {"BTC/KRW", "ETH/KRW"} <= set(markets)
        ticker = await ex.fetch_ticker(BTC)
        assert ticker["last"] == 130_200_000 and ticker["baseVolume"] == 0.75
        tickers = await ex.fetch_tickers()
        assert set(tickers) == {"BTC/KRW", "ETH/KRW"}
        book = await ex.fetch_order_book(BTC, 5)
        assert len(book["bids"]) == 5 and book["bids"][0][0] < 130_200_000 < book["asks"][0][0]
        trades = await ex.fetch_trades(BTC)
        assert [t["price"] for t in trades] == [130_100_000, 130_200_000]
        assert trades[-1]["side"] == "buy"
        for timeframe in ("1m", "5m", "1d", "1w", "1M", "1y"):
            candles = await ex.fetch_ohlcv(BTC, timeframe, limit=10)
            assert candles[-1][4] == 130_200_000 and candles[-1][5] == 0.75, timeframe
        minute = (await ex.fetch_ohlcv(BTC, "1m"))[-1][0]
        assert (await ex.fetch_ohlcv(BTC, "1m", since=minute - 60_000, limit=5))[-1][0] == minute


async def test_quotation_refusals(venue_server: VenueServer) -> None:
    status, body, headers = await call(
        venue_server, "GET", "/v1/ticker", {"markets": "KRW-XRP"}, auth=None
    )
    assert status == 404 and body == {"error": {"name": 404, "message": "Code not found"}}
    status, body, _ = await call(
        venue_server, "GET", "/v1/candles/minutes/7", {"market": "KRW-BTC"}, auth=None
    )
    assert status == 400 and body["error"]["name"] == "validation_error"
    status, body, headers = await call(
        venue_server, "GET", "/v1/market/all", {"isDetails": "true"}, auth=None
    )
    assert status == 200 and body[0]["korean_name"] == "비트코인"
    assert headers["Remaining-Req"] == "group=market; min=600; sec=9"


async def test_balance_and_trading_fee(venue_server: VenueServer) -> None:
    async with upbit(venue_server) as ex:
        balance = await ex.fetch_balance()
        assert balance["KRW"]["free"] == 100_000_000 and balance["BTC"]["total"] == 1
        fee = await ex.fetch_trading_fee(BTC)
        assert fee["maker"] == fee["taker"] == 0.0005
        chance = await ex.private_get_orders_chance({"market": "KRW-BTC"})
        assert chance["market"]["bid"]["min_total"] == "5000"


async def test_limit_rests_fills_over_moves_then_cancels_with_exact_balances(
    venue_server: VenueServer,
) -> None:
    price, qty = D(129_000_000), D("0.05")
    async with upbit(venue_server) as ex:
        order = await ex.create_order(
            BTC, "limit", "buy", 0.05, 129_000_000, {"clientOrderId": "rest-1"}
        )
        assert order["status"] == "open" and order["clientOrderId"] == "rest-1"
        held = price * qty * (1 + FEE)
        assert _balance(venue_server, "KRW") == (D(100_000_000) - held, held)
        assert (
            order["info"]["locked"] == str(held.normalize())
            and order["info"]["reserved_fee"] == "3225"
        )
        for _ in range(2):
            venue_server.upbit.tick("KRW-BTC", D(128_990_000), D(1))
        partial = await ex.fetch_order(order["id"])
        assert partial["filled"] == 0.02 and partial["status"] == "open"
        assert len(partial["trades"]) == 2 and float(partial["fee"]["cost"]) == 1290
        canceled = await ex.cancel_order(order["id"])
        assert canceled["info"]["state"] == "wait"
        final = await ex.fetch_order(order["id"])
        assert final["status"] == "canceled" and final["filled"] == 0.02
    cost = price * D("0.02")
    assert _balance(venue_server, "KRW") == (D(100_000_000) - cost - _fee(cost), 0)
    assert _balance(venue_server, "BTC") == (D("1.02"), 0)


async def test_market_buy_by_amount_both_ways_ccxt_offers(venue_server: VenueServer) -> None:
    ask = D(130_013_000)  # the synthetic book's best ask at 130,000,000
    async with upbit(venue_server) as ex:
        by_cost = await ex.create_order(BTC, "market", "buy", None, None, {"cost": 1_000_000})
        assert by_cost["type"] == "market" and by_cost["info"]["ord_type"] == "price"
        qty = (D(1_000_000) / ask).quantize(D("0.00000001"), rounding=ROUND_DOWN)
        # Upbit cancels the won it could not spend: the order ends "cancel", filled.
        assert by_cost["status"] == "canceled" and by_cost["filled"] == float(qty)
        assert _balance(venue_server, "KRW")[0] == D(100_000_000) - ask * qty - _fee(ask * qty)
        by_price = await ex.create_order(BTC, "market", "buy", 0.001, 130_000_000)
        assert by_price["info"]["price"] == "130000"
        with_cost = await ex.create_market_buy_order_with_cost(BTC, 5_000)
        assert with_cost["cost"] == 5000
    assert len(venue_server.upbit.orders(UPBIT_KEY)) == 3


async def test_market_sell_by_volume_walks_the_book(venue_server: VenueServer) -> None:
    async with upbit(venue_server) as ex:
        order = await ex.create_order(BTC, "market", "sell", 0.015)
        assert order["status"] == "closed" and order["info"]["state"] == "done"
    proceeds = D(129_987_000) * D("0.01") + D(129_974_000) * D("0.005")
    assert _balance(venue_server, "KRW") == (
        D(100_000_000)
        + proceeds
        - _fee(D(129_987_000) * D("0.01"))
        - _fee(D(129_974_000) * D("0.005")),
        0,
    )
    assert _balance(venue_server, "BTC") == (D("0.985"), 0)


async def test_order_refusals_use_upbit_names(make_venue_server) -> None:  # type: ignore[no-untyped-def]
    async with make_venue_server(upbit=UpbitSettings(order_per_window=100)) as server:
        await _refusals(server)


async def _refusals(venue_server: VenueServer) -> None:
    async with upbit(venue_server) as ex:
        cases = [
            ((BTC, "limit", "buy", 0.01, 130_000_500), "invalid_price_bid"),
            ((BTC, "limit", "sell", 0.01, 130_000_500), "invalid_price_ask"),
            ((BTC, "limit", "buy", 0.00001, 129_000_000), "under_min_total_bid"),
            ((BTC, "market", "sell", 0.00001), "under_min_total_ask"),
        ]
        for args, name in cases:
            with pytest.raises(ccxt_async.ExchangeError, match=name):
                await ex.create_order(*args)
        await ex.create_order(BTC, "limit", "buy", 0.01, 120_000_000, {"clientOrderId": "dup"})
        with pytest.raises(ccxt_async.ExchangeError, match="validation_error"):
            await ex.create_order(BTC, "limit", "buy", 0.01, 120_000_000, {"clientOrderId": "dup"})
        with pytest.raises(ccxt_async.OrderNotFound, match="order_not_found"):
            await ex.fetch_order("00000000-0000-0000-0000-000000000000")
        with pytest.raises(ccxt_async.InvalidOrder):
            await ex.private_post_orders({"market": "KRW-BTC", "side": "buy", "ord_type": "limit"})
    async with upbit(venue_server, UPBIT_KEY_2, UPBIT_SECRET_2) as poor:
        with pytest.raises(ccxt_async.InsufficientFunds, match=r"insufficient_funds_bid.*KRW"):
            await poor.create_order(BTC, "limit", "buy", 0.01, 129_000_000)
        with pytest.raises(ccxt_async.InsufficientFunds, match="insufficient_funds_ask"):
            await poor.create_order(BTC, "limit", "sell", 0.01, 131_000_000)
    raw = [
        (
            {
                "market": "KRW-BTC",
                "side": "bid",
                "ord_type": "limit",
                "price": "129000000",
                "volume": "0.000000001",
            },
            "invalid_volume",
        ),
        (
            {"market": "KRW-BTC", "side": "ask", "ord_type": "stop_limit", "volume": "0.01"},
            "validation_error",
        ),
        (
            {
                "market": "KRW-BTC",
                "side": "bid",
                "ord_type": "price",
                "price": "10000",
                "volume": "1",
            },
            "create_bid_error",
        ),
        (
            {"market": "KRW-BTC", "side": "ask", "ord_type": "best", "volume": "0.01"},
            "validation_error",
        ),
        (
            {"market": "KRW-XRP", "side": "ask", "ord_type": "market", "volume": "1"},
            "validation_error",
        ),
        (
            {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "x", "volume": "1"},
            "validation_error",
        ),
    ]
    for body, name in raw:
        status, reply, _ = await call(venue_server, "POST", "/v1/orders", body=body)
        assert status == 400 and reply["error"]["name"] == name, body


async def test_order_listings(venue_server: VenueServer) -> None:
    async with upbit(venue_server) as ex:
        resting = await ex.create_order(
            BTC, "limit", "buy", 0.01, 120_000_000, {"clientOrderId": "a"}
        )
        gone = await ex.create_order(
            BTC, "limit", "sell", 0.01, 140_000_000, {"clientOrderId": "b"}
        )
        await ex.cancel_order(gone["id"])
        sold = await ex.create_order(BTC, "market", "sell", 0.001)
        ioc = await ex.create_order(BTC, "limit", "buy", 0.001, 120_000_000, {"timeInForce": "IOC"})
        assert ioc["status"] == "canceled" and ioc["timeInForce"] == "IOC"
        assert [o["id"] for o in await ex.fetch_open_orders(BTC)] == [resting["id"]]
        assert [o["id"] for o in await ex.fetch_closed_orders(BTC)] == [sold["id"]]
        canceled = await ex.fetch_canceled_orders(BTC)
        assert {o["id"] for o in canceled} == {gone["id"], ioc["id"]}
        _, by_id, _ = await call(venue_server, "GET", "/v1/orders/uuids", {"uuids[]": [gone["id"]]})
        assert [o["identifier"] for o in by_id] == ["b"]
        _, legacy, _ = await call(
            venue_server, "GET", "/v1/orders", {"state": "wait", "market": "KRW-BTC"}
        )
        assert [o["uuid"] for o in legacy] == [resting["id"]]
        found = await ex.private_get_order({"identifier": "a"})
        assert found["uuid"] == resting["id"]
        assert (await ex.fetch_open_orders(BTC, None, None, {"page": 2})) == []


async def test_authentication_errors(venue_server: VenueServer) -> None:
    async with upbit(venue_server, secret="wrong") as ex:
        with pytest.raises(ccxt_async.AuthenticationError, match="jwt_verification"):
            await ex.fetch_balance()
    async with upbit(venue_server, key="nobody") as ex:
        with pytest.raises(ccxt_async.AuthenticationError, match="invalid_access_key"):
            await ex.fetch_balance()
    status, body, _ = await call(venue_server, "GET", "/v1/accounts", auth=None)
    assert status == 401 and body["error"]["name"] == "jwt_verification"
    for bad in ("Bearer not.a.jwt", "Bearer e30.e30.e30", "Basic x"):
        status, body, _ = await call(venue_server, "GET", "/v1/accounts", auth=bad)
        assert status == 401 and body["error"]["name"] == "jwt_verification", bad
    unsigned_query = f"Bearer {token()}"
    status, body, _ = await call(
        venue_server, "GET", "/v1/order", {"uuid": "x"}, auth=unsigned_query
    )
    assert status == 401 and body["error"]["name"] == "invalid_query_payload"
    replay = f"Bearer {token(nonce='once')}"
    assert (await call(venue_server, "GET", "/v1/accounts", auth=replay))[0] == 200
    status, body, _ = await call(venue_server, "GET", "/v1/accounts", auth=replay)
    assert status == 401 and body["error"] == {
        "name": "nonce_used",
        "message": "이미 요청한 nonce값이 다시 사용되었습니다.",
    }
    # Upbit's tokens carry no time: a skewed venue clock does not refuse them.
    venue_server.faults.clock_skew_ms = 600_000
    assert (await call(venue_server, "GET", "/v1/accounts"))[0] == 200


async def test_rate_limit_429_then_418(make_venue_server) -> None:  # type: ignore[no-untyped-def]
    settings = UpbitSettings(quotation_per_window=2, window_ms=60_000, ban_after=1)
    async with make_venue_server(upbit=settings) as server, upbit(server) as ex:
        await ex.load_markets()
        await ex.fetch_ticker(BTC)
        await ex.fetch_ticker(BTC)
        with pytest.raises(ccxt_async.RateLimitExceeded):
            await ex.fetch_ticker(BTC)
        status, _, headers = await call(
            server, "GET", "/v1/ticker", {"markets": "KRW-BTC"}, auth=None
        )
        assert status == 429 and headers["Remaining-Req"] == "group=ticker; min=120; sec=0"
        with pytest.raises(ccxt_async.DDoSProtection):
            await ex.fetch_ticker(BTC)
        # Exchange groups count per account, apart from quotation.
        assert (await ex.fetch_balance())["KRW"]["free"] == 100_000_000


async def test_faults_latency_5xx_and_storm(venue_server: VenueServer) -> None:
    async with upbit(venue_server) as ex:
        await ex.load_markets()
        venue_server.faults.latency_ms = 150
        loop = asyncio.get_running_loop()
        started = loop.time()
        await ex.fetch_ticker(BTC)
        assert loop.time() - started >= 0.15
        venue_server.faults.latency_ms = 0
        venue_server.faults.error_5xx = 1
        with pytest.raises(ccxt_async.ExchangeNotAvailable):
            await ex.fetch_balance()
        assert (await ex.fetch_balance())["BTC"]["free"] == 1
        venue_server.faults.rate_limit_storm = 1
        with pytest.raises(ccxt_async.RateLimitExceeded):
            await ex.fetch_ticker(BTC)


async def test_drop_after_accept_books_exactly_one_order(venue_server: VenueServer) -> None:
    venue_server.faults.drop_after_accept = 1
    async with upbit(venue_server) as ex:
        await ex.load_markets()
        with pytest.raises(ccxt_async.NetworkError):
            await ex.create_order(
                BTC, "limit", "buy", 0.01, 120_000_000, {"clientOrderId": "lost-1"}
            )
        found = await ex.private_get_order({"identifier": "lost-1"})
        assert found["state"] == "wait"
        # Retrying with the same identifier is refused: the order exists once.
        with pytest.raises(ccxt_async.ExchangeError, match="validation_error"):
            await ex.create_order(
                BTC, "limit", "buy", 0.01, 120_000_000, {"clientOrderId": "lost-1"}
            )
    assert len(venue_server.upbit.orders(UPBIT_KEY)) == 1


async def test_raw_parameter_edges(venue_server: VenueServer) -> None:
    day = 86_400_000
    now = venue_server.upbit.now_ms()
    for back in (40, 2):
        venue_server.upbit.tick("KRW-BTC", D(130_100_000), D(1), time_ms=now - back * day)
    status, body, _ = await call(
        venue_server, "GET", "/v1/candles/months", {"market": "KRW-BTC", "count": "5"}, auth=None
    )
    assert status == 200 and body[0]["first_day_of_period"].endswith("-01")
    status, body, _ = await call(
        venue_server,
        "GET",
        "/v1/candles/days",
        {"market": "KRW-BTC", "count": "5", "to": "2100-01-01 00:00:00"},
        auth=None,
    )
    assert status == 200 and "prev_closing_price" in body[0]
    bad = [
        ("/v1/candles/days", {"market": "KRW-BTC", "to": "yesterday"}),
        ("/v1/candles/days", {"market": "KRW-BTC", "count": "x"}),
        ("/v1/candles/days", {"market": "KRW-BTC", "count": "999"}),
        ("/v1/ticker", {}),
    ]
    for path, params in bad:
        assert (await call(venue_server, "GET", path, params, auth=None))[0] == 400, params
    assert (
        await call(
            venue_server, "GET", "/v1/orderbook", {"markets": "KRW-ETH", "count": "3"}, auth=None
        )
    )[1][0]["orderbook_units"][2]
    closed = [
        ({"start_time": str(now - day)}, 200),
        ({"end_time": str(now)}, 200),
        ({"start_time": str(now - 30 * day), "end_time": str(now)}, 400),
        ({"state": "wait"}, 400),
    ]
    for params, expected in closed:
        assert (await call(venue_server, "GET", "/v1/orders/closed", params))[0] == expected, params
    assert (await call(venue_server, "GET", "/v1/orders/uuids"))[0] == 400
    assert (await call(venue_server, "GET", "/v1/order"))[0] == 400
    assert (await call(venue_server, "GET", "/v1/orders/chance", {"market": "KRW-XRP"}))[0] == 400
    async with upbit(venue_server) as ex:
        done = await ex.create_order(BTC, "market", "sell", 0.001)
        with pytest.raises(ccxt_async.OrderNotFound):
            await ex.cancel_order(done["id"])
