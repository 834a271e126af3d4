"""`sigma venue`'s settings: where it listens, which protocols, accounts, fees, price path,
faults and whether its state survives a restart. Read from a YAML file and command options."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sigma.venues.emulator.faults import Faults

__all__ = [
    "DEMO_ACCOUNTS",
    "AccountConfig",
    "ProtocolConfig",
    "VenueConfig",
    "build_config",
    "load_venue_config",
    "parse_account",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountConfig(_Strict):
    """One API key with its secret and starting balances (asset -> amount)."""

    api_key: str = Field(min_length=1, max_length=128)
    secret: str = Field(min_length=1, max_length=256)
    balances: dict[str, Decimal] = Field(default_factory=dict)

    @field_validator("balances")
    @classmethod
    def _non_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in value.items():
            if not amount.is_finite() or amount < 0:
                raise ValueError(f"balance of {asset} must be a finite amount >= 0")
        return value


class ProtocolConfig(_Strict):
    """One protocol's exchange: its fee tier, accounts and protocol settings (rate limits…)."""

    enabled: bool = True
    maker_fee: Decimal = Field(ge=0, lt=Decimal("0.1"))
    taker_fee: Decimal = Field(ge=0, lt=Decimal("0.1"))
    accounts: list[AccountConfig] = Field(default_factory=list)
    #: fields of the front end's settings dataclass (BinanceSettings, UpbitSettings)
    settings: dict[str, Any] = Field(default_factory=dict)


def _binance() -> ProtocolConfig:
    # Binance spot's regular tier (VIP 0), without the BNB discount.
    return ProtocolConfig(maker_fee=Decimal("0.001"), taker_fee=Decimal("0.001"))


def _upbit() -> ProtocolConfig:
    # Upbit's KRW market fee for orders placed through the API.
    return ProtocolConfig(maker_fee=Decimal("0.0005"), taker_fee=Decimal("0.0005"))


class VenueConfig(_Strict):
    """Everything `sigma venue` runs with (see ``sigma venue --help`` and docs/venue.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8900, ge=0, le=65535)
    #: ``synthetic`` (seeded regime-switching path), ``manual`` (prices move only through the
    #: admin route or :meth:`Venue.tick`), a CSV/Parquet path or ``pg:TABLE``
    source: str = "synthetic"
    #: 1 replays the path's one-minute bars in real time, 60 a bar a second
    speed: float = Field(default=60.0, gt=0, le=100_000)
    seed: int = 0
    #: one-minute candles of history served before the live path starts
    history_bars: int = Field(default=1440, ge=0, le=200_000)
    #: a file that keeps orders, trades and balances across restarts (none: memory only)
    state_file: Path | None = None
    #: required in the ``X-Sigma-Admin`` header of the admin routes when set
    admin_token: str | None = None
    binance: ProtocolConfig = Field(default_factory=_binance)
    upbit: ProtocolConfig = Field(default_factory=_upbit)
    faults: dict[str, Any] = Field(default_factory=dict)

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: dict[str, Any]) -> dict[str, Any]:
        Faults().update(value)
        return value


def load_venue_config(path: Path | None = None, **overrides: Any) -> VenueConfig:
    """The settings in the YAML file ``path`` (if any), with ``overrides`` on top."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return VenueConfig.model_validate(data)


def parse_account(text: str) -> tuple[str, AccountConfig]:
    """``PROTOCOL:KEY:SECRET[:ASSET=AMOUNT,...]`` (the ``--account`` option) -> (protocol,
    account)."""
    parts = text.split(":", 3)
    if len(parts) < 3 or parts[0] not in ("binance", "upbit"):
        raise ValueError(f"account {text!r}: expected binance|upbit:KEY:SECRET[:ASSET=AMOUNT,...]")
    balances: dict[str, str] = {}
    for item in filter(None, (parts[3] if len(parts) == 4 else "").split(",")):
        asset, sep, amount = item.partition("=")
        if not sep or not asset:
            raise ValueError(f"account {parts[1]!r}: balance {item!r} is not ASSET=AMOUNT")
        balances[asset.strip().upper()] = amount.strip()
    account = AccountConfig.model_validate(
        {"api_key": parts[1], "secret": parts[2], "balances": balances}
    )
    return parts[0], account


#: What a venue started without accounts funds, so a first rehearsal can trade at once.
DEMO_ACCOUNTS: dict[str, AccountConfig] = {
    "binance": AccountConfig(
        api_key="sigma-demo-key",
        secret="sigma-demo-secret",
        balances={"USDT": Decimal(100_000), "BTC": Decimal(1), "ETH": Decimal(10)},
    ),
    "upbit": AccountConfig(
        api_key="sigma-demo-key",
        secret="sigma-demo-secret",
        balances={"KRW": Decimal(100_000_000), "BTC": Decimal(1), "ETH": Decimal(10)},
    ),
}


def build_config(
    config_file: Path | None,
    accounts: list[str],
    protocols: str | None,
    faults: dict[str, Any],
    **options: Any,
) -> VenueConfig:
    """The venue's settings: the YAML file, then the command's options; demo accounts where a
    protocol has none. ValueError says which option is wrong."""
    try:
        config = load_venue_config(config_file, **options)
        data = config.model_dump()
        for text in accounts:
            protocol, account = parse_account(text)
            data[protocol]["accounts"].append(account.model_dump())
        if protocols is not None:
            wanted = {p.strip() for p in protocols.split(",") if p.strip()}
            unknown = wanted - {"binance", "upbit"}
            if unknown or not wanted:
                raise ValueError(f"--protocols takes binance and/or upbit, got {protocols!r}")
            for protocol in ("binance", "upbit"):
                data[protocol]["enabled"] = protocol in wanted
        for protocol, demo in DEMO_ACCOUNTS.items():
            if not data[protocol]["accounts"]:
                data[protocol]["accounts"].append(demo.model_dump())
        data["faults"] = {**data["faults"], **faults}
        return VenueConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None
