"""The test venue's settings and accounts (shared by the venue tests and their conftest)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sigma.venues.emulator.config import AccountConfig, ProtocolConfig, VenueConfig
from sigma.venues.emulator.model import MarketSpec

BINANCE_KEY, BINANCE_SECRET = "binance-key", "binance-secret"
BINANCE_KEY_2, BINANCE_SECRET_2 = "binance-key-2", "binance-secret-2"
UPBIT_KEY, UPBIT_SECRET = "upbit-key", "upbit-secret"
UPBIT_KEY_2, UPBIT_SECRET_2 = "upbit-key-2", "upbit-secret-2"


def _account(key: str, secret: str, **balances: str) -> AccountConfig:
    return AccountConfig(
        api_key=key, secret=secret, balances={a: Decimal(v) for a, v in balances.items()}
    )


def venue_config(
    *,
    binance: Any = None,
    upbit: Any = None,
    state_file: Path | None = None,
    faults: dict[str, Any] | None = None,
    **settings: Any,
) -> VenueConfig:
    """The test venue: manual prices, no history, the accounts the tests trade with.
    ``binance``/``upbit`` are the front ends' settings dataclasses (or dicts of their fields)."""
    return VenueConfig(
        port=0,
        source="manual",
        history_bars=settings.pop("history_bars", 0),
        state_file=state_file,
        faults=faults or {},
        binance=ProtocolConfig(
            maker_fee=Decimal("0.001"),
            taker_fee=Decimal("0.001"),
            accounts=[
                _account(BINANCE_KEY, BINANCE_SECRET, USDT="100000", BTC="1", ETH="10"),
                _account(BINANCE_KEY_2, BINANCE_SECRET_2, USDT="1000"),
            ],
            settings=_fields(binance),
        ),
        upbit=ProtocolConfig(
            maker_fee=Decimal("0.0005"),
            taker_fee=Decimal("0.0005"),
            accounts=[
                _account(UPBIT_KEY, UPBIT_SECRET, KRW="100000000", BTC="1", ETH="10"),
                _account(UPBIT_KEY_2, UPBIT_SECRET_2, KRW="1000000"),
            ],
            settings=_fields(upbit),
        ),
        **settings,
    )


def _fields(settings: Any) -> dict[str, Any]:
    if settings is None:
        return {}
    if isinstance(settings, dict):
        return settings
    return dict(vars(settings))


#: Binance's BTCUSDT as the core tests model it: at 92000 the book is 2 bps wide around the
#: last price (half = 9.20) with levels 1 bp (9.20) apart, 0.1 BTC each.
BTC_SPEC = MarketSpec(
    symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    tick_sizes=((Decimal(0), Decimal("0.01")),),
    step_size=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
    max_qty=Decimal(9000),
    min_price=Decimal("0.01"),
    max_price=Decimal(1_000_000),
    min_notional=Decimal(5),
    start_price=Decimal(92000),
    level_qty=Decimal("0.1"),
)
