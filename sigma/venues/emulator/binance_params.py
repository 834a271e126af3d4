"""Binance REST request parameters: parsing them as Binance does (-1100, -1102 and friends)
and the request weight each route charges for them (rest-api.md, each endpoint's "Weight")."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from sigma.venues.emulator.binance_wire import ApiError, epoch_ms, missing_param

__all__ = [
    "Params",
    "by_symbol",
    "client_id",
    "decimal",
    "depth_weight",
    "enum_param",
    "fixed",
    "illegal",
    "integer",
    "my_trades_weight",
    "opt_int",
    "opt_time",
    "page",
    "page_limit",
    "required",
    "rolling_weight",
    "symbol_name",
    "symbols_param",
    "test_weight",
    "ticker_weight",
    "unsigned",
    "window",
]

Params = dict[str, str]
E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")

# The legal ranges Binance quotes in its -1100 messages, and the patterns behind them.
_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INTEGER_RANGE = "^[0-9]{1,20}$"
_SYMBOL_RANGE = "^[A-Z0-9-_.]{1,20}$"
_CLIENT_ID_RANGE = "^[a-zA-Z0-9-_]{1,36}$"
_SYMBOLS_RANGE = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_INTEGER = re.compile("[0-9]{1,20}")
_SYMBOL = re.compile(r"[A-Z0-9\-_.]{1,20}")
_CLIENT_ID = re.compile(r"[a-zA-Z0-9\-_]{1,36}")
_DAY_MS = 86_400_000


def fixed(weight: int) -> Callable[[Params], int]:
    return lambda params: weight


def by_symbol(one: int, every: int) -> Callable[[Params], int]:
    return lambda params: one if "symbol" in params else every


def depth_weight(params: Params) -> int:
    limit = integer(params, "limit", 100, quiet=True)
    for top, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= top:
            return weight
    return 250


def ticker_weight(params: Params) -> int:
    if "symbol" in params:
        return 2
    count = len(symbols_param(params, quiet=True) or ())
    if not count:
        return 80
    return 2 if count <= 20 else 40 if count <= 100 else 80


def rolling_weight(params: Params) -> int:
    """``GET /api/v3/ticker``: 4 a symbol, at most 200."""
    count = 1 if "symbol" in params else len(symbols_param(params, quiet=True) or ())
    return min(4 * max(count, 1), 200)


def test_weight(params: Params) -> int:
    return 20 if params.get("computeCommissionRates") == "true" else 1


def my_trades_weight(params: Params) -> int:
    return 5 if "orderId" in params else 20


def window(
    items: list[T], time_of: Callable[[T], int], params: Params, keep: Callable[[T], bool]
) -> list[T]:
    """``items`` kept by ``keep`` whose time lies in [startTime, endTime]; -1127 for a window
    longer than a day (allOrders and myTrades: "can't be longer than 24 hours")."""
    start, end = opt_time(params, "startTime"), opt_time(params, "endTime")
    if start is not None and end is not None and end - start > _DAY_MS:
        raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")
    return [
        item
        for item in items
        if keep(item)
        and (start is None or time_of(item) >= start)
        and (end is None or time_of(item) <= end)
    ]


def page(items: list[T], params: Params, forward: bool) -> list[T]:
    """The oldest ``limit`` from a start point, else the latest ``limit`` (rest-api.md)."""
    limit = page_limit(params)
    return items[:limit] if forward or "startTime" in params else items[-limit:]


def required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing_param(name)
    return value


def illegal(name: str, legal: str) -> ApiError:
    """-1100 for a parameter outside its legal range (errors.md)."""
    return ApiError(
        400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def _matched(params: Params, name: str, pattern: re.Pattern[str], legal: str) -> str | None:
    """The text of parameter ``name`` when it matches ``pattern`` whole; None when absent or
    empty, -1100 quoting ``legal`` otherwise."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not pattern.fullmatch(text):
        raise illegal(name, legal)
    return text


def decimal(params: Params, name: str) -> Decimal | None:
    """A DECIMAL parameter: plain digits with an optional fraction, as Binance's pattern
    allows (no sign, exponent or spaces); None when absent or empty."""
    text = _matched(params, name, _DECIMAL, _DECIMAL_RANGE)
    return None if text is None else Decimal(text)


def opt_int(params: Params, name: str) -> int | None:
    """A LONG/INT parameter (digits only); None when absent or empty."""
    text = _matched(params, name, _INTEGER, _INTEGER_RANGE)
    return None if text is None else int(text)


def opt_time(params: Params, name: str) -> int | None:
    """A time parameter in epoch milliseconds, sent in milliseconds or microseconds."""
    value = opt_int(params, name)
    return None if value is None else epoch_ms(value)


def symbol_name(params: Params, name: str = "symbol") -> str:
    """The ``symbol`` parameter's text: -1102 when missing, -1100 outside Binance's pattern
    (lower case included)."""
    text = required(params, name)
    if not _SYMBOL.fullmatch(text):
        raise illegal(name, _SYMBOL_RANGE)
    return text


def client_id(params: Params, name: str) -> str | None:
    """A client order id the caller names (``newClientOrderId``); None when absent."""
    return _matched(params, name, _CLIENT_ID, _CLIENT_ID_RANGE)


def integer(params: Params, name: str, default: int, *, quiet: bool = False) -> int:
    try:
        value = opt_int(params, name)
    except ApiError:
        if not quiet:
            raise
        value = None
    return default if value is None else value


def page_limit(params: Params) -> int:
    return max(1, min(integer(params, "limit", 500), 1000))


def enum_param(params: Params, name: str, kind: type[E], code: int, msg: str) -> E:
    text = required(params, name)
    try:
        return kind(text)
    except ValueError as exc:
        raise ApiError(400, code, msg) from exc


def symbols_param(params: Params, *, quiet: bool = False) -> list[str] | None:
    """The ``symbols`` parameter: a JSON array of names (``["BTCUSDT","ETHUSDT"]``)."""
    text = params.get("symbols")
    if text is None:
        symbol = params.get("symbol")
        return [symbol] if symbol else None
    try:
        names = json.loads(text)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(text)
    except ValueError as exc:
        if quiet:
            return None
        raise illegal("symbols", _SYMBOLS_RANGE) from exc
    if len(set(names)) < len(names) and not quiet:
        raise ApiError(400, -1151, "Symbol is present multiple times in the list.")
    return names


def unsigned(raw: str) -> str:
    """``raw`` (a query string or form body) without its ``signature`` parameter."""
    if "signature=" not in raw:
        return raw
    return "&".join(pair for pair in raw.split("&") if not pair.startswith("signature="))
