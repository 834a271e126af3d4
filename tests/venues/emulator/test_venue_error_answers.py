"""The trading refusals a strategy meets most, through real ccxt on the running venue: each
answer is the real venue's documented one (Binance's errors.md code and message, Upbit's error
name and message) and ccxt raises for it the exception class it raises for the real venue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt_async
import pytest
from binance_helpers import binance, limit_order
from upbit_helpers import upbit
from venue_helpers import BINANCE_KEY_2, BINANCE_SECRET_2, UPBIT_KEY_2, UPBIT_SECRET_2

from sigma.venues.emulator.server import VenueServer

Call = Callable[[Any], Awaitable[Any]]
NO_ORDER = "00000000-0000-0000-0000-000000000000"


def _upbit_order(**override: str) -> dict[str, str]:
    order = {
        "market": "KRW-BTC",
        "side": "bid",
        "ord_type": "limit",
        "volume": "0.01",
        "price": "129000000",
    }
    return {**order, **override}


def _binance_error(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}


def _upbit_error(name: str, message: str) -> dict[str, Any]:
    return {"error": {"name": name, "message": message}}


_BINANCE: dict[str, tuple[Call, type[Exception], dict[str, Any]]] = {
    "unknown symbol": (
        lambda ex: ex.privatePostOrder(limit_order(symbol="DOGEUSDT")),
        ccxt_async.BadSymbol,
        _binance_error(-1121, "Invalid symbol."),
    ),
    "bad side": (
        lambda ex: ex.privatePostOrder(limit_order(side="HOLD")),
        ccxt_async.BadRequest,
        _binance_error(-1117, "Invalid side."),
    ),
    "bad type": (
        lambda ex: ex.privatePostOrder(limit_order(type="ICEBERG")),
        ccxt_async.BadRequest,
        _binance_error(-1116, "Invalid orderType."),
    ),
    "quantity off the step": (
        lambda ex: ex.privatePostOrder(limit_order(quantity="0.000015")),
        ccxt_async.InvalidOrder,
        _binance_error(-1013, "Filter failure: LOT_SIZE"),
    ),
    "price off the tick": (
        lambda ex: ex.privatePostOrder(limit_order(price="90000.005")),
        ccxt_async.InvalidOrder,
        _binance_error(-1013, "Filter failure: PRICE_FILTER"),
    ),
    "quantity past the asset's precision": (
        lambda ex: ex.privatePostOrder(limit_order(quantity="0.000000001")),
        ccxt_async.BadRequest,
        _binance_error(-1111, "Parameter 'quantity' has too much precision."),
    ),
    # ccxt maps spot's -1013 to BadRequest, not InvalidOrder, for the real venue too.
    "below the minimum notional": (
        lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.00001, 90000),
        ccxt_async.BadRequest,
        _binance_error(-1013, "Filter failure: NOTIONAL"),
    ),
    "cancel of an unknown order": (
        lambda ex: ex.cancel_order("999999", "BTC/USDT"),
        ccxt_async.OrderNotFound,
        _binance_error(-2011, "Unknown order sent."),
    ),
    "fetch of an unknown order": (
        lambda ex: ex.fetch_order("999999", "BTC/USDT"),
        ccxt_async.OrderNotFound,
        _binance_error(-2013, "Order does not exist."),
    ),
    "insufficient balance": (
        lambda ex: ex.create_order("BTC/USDT", "limit", "buy", 0.5, 90000),
        ccxt_async.InsufficientFunds,
        _binance_error(-2010, "Account has insufficient balance for requested action."),
    ),
}

_UPBIT: dict[str, tuple[Call, type[Exception], dict[str, Any]]] = {
    # ccxt has no mapping of Upbit's validation_error but the side's message.
    "unknown market": (
        lambda ex: ex.private_post_orders(_upbit_order(market="KRW-DOGE")),
        ccxt_async.ExchangeError,
        _upbit_error("validation_error", "market does not have a valid value"),
    ),
    "bad side": (
        lambda ex: ex.private_post_orders(_upbit_order(side="hold")),
        ccxt_async.InvalidOrder,
        _upbit_error("validation_error", "side is missing, side does not have a valid value"),
    ),
    "bad type": (
        lambda ex: ex.private_post_orders(_upbit_order(ord_type="iceberg")),
        ccxt_async.ExchangeError,
        _upbit_error(
            "validation_error", "ord_type is missing, ord_type does not have a valid value"
        ),
    ),
    "price off the tick": (
        lambda ex: ex.private_post_orders(_upbit_order(price="129000500")),
        ccxt_async.ExchangeError,
        _upbit_error(
            "invalid_price_bid", "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요."
        ),
    ),
    "below the minimum total": (
        lambda ex: ex.private_post_orders(_upbit_order(volume="0.00001")),
        ccxt_async.ExchangeError,
        _upbit_error("under_min_total_bid", "최소주문금액 이상으로 주문해주세요"),
    ),
    "cancel of an unknown order": (
        lambda ex: ex.cancel_order(NO_ORDER),
        ccxt_async.OrderNotFound,
        _upbit_error("order_not_found", "주문을 찾지 못했습니다."),
    ),
    "fetch of an unknown order": (
        lambda ex: ex.fetch_order(NO_ORDER),
        ccxt_async.OrderNotFound,
        _upbit_error("order_not_found", "주문을 찾지 못했습니다."),
    ),
    "insufficient funds to buy": (
        lambda ex: ex.create_order("BTC/KRW", "limit", "buy", 0.01, 129_000_000),
        ccxt_async.InsufficientFunds,
        _upbit_error("insufficient_funds_bid", "주문가능한 금액(KRW)이 부족합니다."),
    ),
    "insufficient funds to sell": (
        lambda ex: ex.create_order("BTC/KRW", "limit", "sell", 0.01, 131_000_000),
        ccxt_async.InsufficientFunds,
        _upbit_error("insufficient_funds_ask", "주문가능한 금액(BTC)이 부족합니다."),
    ),
}


async def _refused(ex: Any, call: Call, expected: type[Exception], answer: dict[str, Any]) -> None:
    with pytest.raises(ccxt_async.BaseError) as raised:
        await call(ex)
    assert type(raised.value) is expected, raised.value
    assert ex.last_json_response == answer


@pytest.mark.parametrize("case", list(_BINANCE))
async def test_binance_refusals_are_binances_and_map_to_ccxts_classes(
    venue_server: VenueServer, case: str
) -> None:
    call, expected, answer = _BINANCE[case]
    # The second account holds 1000 USDT and no BTC: too little for the balance case only.
    async with binance(
        venue_server, BINANCE_KEY_2, BINANCE_SECRET_2, enableLastJsonResponse=True
    ) as ex:
        await ex.load_markets()
        await _refused(ex, call, expected, answer)
    assert not venue_server.binance.orders(BINANCE_KEY_2)


@pytest.mark.parametrize("case", list(_UPBIT))
async def test_upbit_refusals_are_upbits_and_map_to_ccxts_classes(
    venue_server: VenueServer, case: str
) -> None:
    call, expected, answer = _UPBIT[case]
    # The second account holds 1,000,000 KRW and no BTC: too little for the balance cases.
    async with upbit(venue_server, UPBIT_KEY_2, UPBIT_SECRET_2, enableLastJsonResponse=True) as ex:
        await ex.load_markets()
        await _refused(ex, call, expected, answer)
    assert not venue_server.upbit.orders(UPBIT_KEY_2)
