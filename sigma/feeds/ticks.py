"""The wire format of a tick, and its strict, fast decoder.

A tick on the wire is one JSON object::

    {"symbol": "BTC", "ts": "2024-01-01T00:00:00Z", "price": "42000.5",
     "volume": "0.3", "bid": "42000.4", "ask": "42000.6"}

``ts`` is an ISO-8601 string (naive means UTC) or epoch milliseconds; ``price``, ``volume``,
``bid`` and ``ask`` are decimal strings or JSON numbers; ``volume``, ``bid`` and ``ask`` are
optional (``null`` is the same as absent). Unknown keys are ignored so producers can add fields
without breaking old consumers.

:func:`decode_tick` is the only door from untrusted bytes to a :class:`~sigma.domain.Tick`. It
uses ``json`` plus hand-written checks rather than a schema library because it sits on the hot
path of every feed (it decodes well over 100k ticks per second).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sigma.domain import Tick

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_FUTURE_SECONDS",
    "MAX_NUMBER",
    "MAX_SYMBOL_LEN",
    "Clock",
    "TickError",
    "check_not_future",
    "decode_tick",
    "encode_tick",
    "tick_from_fields",
    "valid_symbol",
]

MAX_FRAME_BYTES = 4096
MAX_SYMBOL_LEN = 32
MAX_FUTURE_SECONDS = 5.0
# No traded price, size or quote is anywhere near a trillion; bigger numbers are corrupt frames
# (or attempts to make downstream float maths overflow).
MAX_NUMBER = Decimal(10) ** 12
# Epoch milliseconds must land between 1970 and the year 9999 (what datetime can hold).
_MAX_EPOCH_MS = 253_402_300_799_999

Clock = Callable[[], float]
"""Returns the current time as epoch seconds (``time.time`` unless a test injects one)."""

_SYMBOL = re.compile(rf"[A-Za-z0-9._/-]{{1,{MAX_SYMBOL_LEN}}}")
# parse_float=Decimal keeps JSON numbers exact (0.1 stays 0.1); parse_constant=Decimal turns
# NaN/Infinity (which the json module accepts by default) into Decimals that the field checks
# reject with the field's name.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)
# Exactly what `encode_tick` writes for a tick without a quote: the bot decodes every price on
# the bus, and matching this shape skips the JSON parser and the type checks of the general
# path (about half the bot's time per tick). Anything else, valid or not, takes that path.
_DIGITS = rb"(\d{1,13}(?:\.\d{1,20})?)"
_CANONICAL = re.compile(
    rb'\{"symbol":"([A-Za-z0-9._/-]{1,%d})","ts":"([0-9T:.Z+-]{10,40})",'
    rb'"price":"%s","volume":"%s"\}' % (MAX_SYMBOL_LEN, _DIGITS, _DIGITS)
)


class TickError(ValueError):
    """A frame that is not a valid tick. ``reason`` is a short code for counting drops
    (``"json"``, ``"price"``, ``"future"``...); the message explains the problem."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def valid_symbol(symbol: object) -> bool:
    """True for a non-empty string of at most 32 characters from ``[A-Za-z0-9._/-]``."""
    return isinstance(symbol, str) and _SYMBOL.fullmatch(symbol) is not None


def encode_tick(tick: Tick) -> bytes:
    """The wire JSON of ``tick``: Decimals as strings, ``ts`` as ISO-8601 UTC ending in ``Z``.

    ``bid``/``ask`` are omitted when absent, so ``decode_tick(encode_tick(t)) == t``.
    """
    obj: dict[str, str] = {
        "symbol": tick.symbol,
        "ts": tick.ts.isoformat().replace("+00:00", "Z"),
        "price": str(tick.price),
        "volume": str(tick.volume),
    }
    if tick.bid is not None:
        obj["bid"] = str(tick.bid)
    if tick.ask is not None:
        obj["ask"] = str(tick.ask)
    return json.dumps(obj, separators=(",", ":")).encode()


def check_not_future(
    ts: datetime, clock: Clock = time.time, max_future: float = MAX_FUTURE_SECONDS
) -> None:
    """Raise TickError(``"future"``) when ``ts`` is more than ``max_future`` s after ``clock()``.

    Clocks of exchanges and hosts drift by a few milliseconds, not seconds; a tick from the
    future is a corrupt or forged frame and would poison out-of-order checks for later ticks.
    """
    ahead = ts.timestamp() - clock()
    if ahead > max_future:
        raise TickError("future", f"ts {ts.isoformat()} is {ahead:.1f}s in the future")


def decode_tick(
    raw: bytes | bytearray | str,
    *,
    clock: Clock = time.time,
    max_future: float = MAX_FUTURE_SECONDS,
) -> Tick:
    """Parse and check one wire frame; raise :class:`TickError` saying why it is not a tick.

    Checks, in order: size (at most 4 KiB), UTF-8, JSON, an object, the symbol, the timestamp
    (valid, not more than ``max_future`` seconds after ``clock()``), price (finite, > 0,
    <= 1e12), volume (finite, >= 0, <= 1e12), bid/ask (like price) and that bid <= ask.
    """
    if isinstance(raw, bytes) and (match := _CANONICAL.fullmatch(raw)) is not None:
        return _canonical_tick(match, clock, max_future)
    text = _text(raw)
    try:
        obj = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise TickError("json", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise TickError("not_object", f"expected a JSON object, got {type(obj).__name__}")
    return tick_from_fields(obj, clock=clock, max_future=max_future)


def tick_from_fields(
    obj: Mapping[str, Any],
    *,
    clock: Clock = time.time,
    max_future: float = MAX_FUTURE_SECONDS,
) -> Tick:
    """Check the wire fields in ``obj`` (as :func:`decode_tick` does after parsing) and build
    the tick. Numbers may also be floats here, for adapters that get them from a library."""
    symbol = obj.get("symbol")
    if not valid_symbol(symbol):
        raise TickError(
            "symbol" if "symbol" in obj else "missing",
            f"symbol must be 1-{MAX_SYMBOL_LEN} chars of [A-Za-z0-9._/-], got {symbol!r:.50}",
        )
    assert isinstance(symbol, str)  # narrowed by valid_symbol
    ts = _timestamp(obj.get("ts", _MISSING))
    check_not_future(ts, clock, max_future)
    price = _number(obj.get("price", _MISSING), "price", positive=True)
    volume = obj.get("volume")
    bid = obj.get("bid")
    ask = obj.get("ask")
    vol = Decimal(0) if volume is None else _number(volume, "volume", positive=False)
    bid_d = None if bid is None else _number(bid, "bid", positive=True)
    ask_d = None if ask is None else _number(ask, "ask", positive=True)
    if bid_d is not None and ask_d is not None and bid_d > ask_d:
        raise TickError("crossed", f"crossed quote: bid {bid_d} > ask {ask_d}")
    return Tick(symbol, ts, price, vol, bid_d, ask_d)


_MISSING: Any = object()


def _canonical_tick(match: re.Match[bytes], clock: Clock, max_future: float) -> Tick:
    """The tick of a frame `_CANONICAL` matched, with the checks the pattern leaves open."""
    symbol, ts_text, price_text, volume_text = match.groups()
    ts = _timestamp(ts_text.decode())
    check_not_future(ts, clock, max_future)
    price = Decimal(price_text.decode())
    volume = Decimal(volume_text.decode())
    # Same order of checks, hence the same reason, as `_number` on the general path.
    if price > MAX_NUMBER:
        raise TickError("too_large", f"price {price:.3e} exceeds {MAX_NUMBER:.0e}")
    if price <= 0:
        raise TickError("price", f"price must be positive, got {price}")
    if volume > MAX_NUMBER:
        raise TickError("too_large", f"volume {volume:.3e} exceeds {MAX_NUMBER:.0e}")
    return Tick(symbol.decode(), ts, price, volume)


def _text(raw: bytes | bytearray | str) -> str:
    if isinstance(raw, str):
        # A character is at most 4 UTF-8 bytes: only long strings need the exact count.
        if len(raw) > MAX_FRAME_BYTES // 4 and (
            len(raw) > MAX_FRAME_BYTES
            or len(raw.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
        ):
            raise TickError("oversized", f"frame longer than {MAX_FRAME_BYTES} bytes")
        return raw
    if not isinstance(raw, bytes | bytearray):
        raise TickError("type", f"frame must be bytes or str, got {type(raw).__name__}")
    if len(raw) > MAX_FRAME_BYTES:
        raise TickError("oversized", f"frame of {len(raw)} bytes > {MAX_FRAME_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TickError("utf8", f"not valid UTF-8: {exc.reason} at byte {exc.start}") from None


def _timestamp(value: object) -> datetime:
    if value is _MISSING or value is None:
        raise TickError("missing", "missing field 'ts'")
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise TickError("ts", f"ts is not ISO-8601: {value!r:.50}") from None
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TickError("type", f"ts must be a string or epoch ms, got {type(value).__name__}")
    # Decimal NaN raises on comparison, so finiteness is checked first.
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite or not 0 <= value <= _MAX_EPOCH_MS:
        raise TickError("ts", f"ts epoch ms out of range: {value!s:.50}")
    return datetime.fromtimestamp(float(value) / 1000.0, UTC)


def _number(value: object, name: str, *, positive: bool) -> Decimal:
    if value is _MISSING:
        raise TickError("missing", f"missing field {name!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise TickError(name, f"{name} string too long")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise TickError(name, f"{name} is not a number: {value!r:.50}") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest string that round-trips, so 0.1 becomes Decimal("0.1").
        number = Decimal(repr(value))
    else:
        raise TickError("type", f"{name} must be a number or string, got {type(value).__name__}")
    if not number.is_finite():
        raise TickError(name, f"{name} must be finite, got {value!s:.50}")
    if number > MAX_NUMBER:
        raise TickError("too_large", f"{name} {number:.3e} exceeds {MAX_NUMBER:.0e}")
    if positive and number <= 0:
        raise TickError(name, f"{name} must be positive, got {number}")
    if number < 0:
        raise TickError(name, f"{name} must not be negative, got {number}")
    return number
