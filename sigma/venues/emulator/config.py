"""`sigma venue`'s settings: where it listens, which protocols, accounts, fees, price path,
faults and whether its state survives a restart. Read from a YAML file and command options."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints

import yaml
from annotated_types import Ge, Gt, Le, MultipleOf
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sigma.venues.emulator.binance_wire import BinanceSettings
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.upbit_settings import UpbitSettings

__all__ = [
    "DEMO_ACCOUNTS",
    "AccountConfig",
    "ProtocolConfig",
    "VenueConfig",
    "build_config",
    "load_venue_config",
    "parse_account",
    "settings_model",
]

#: Each protocol's settings dataclass: ``<protocol>.settings`` in the YAML holds its fields.
PROTOCOL_SETTINGS: dict[str, type] = {"binance": BinanceSettings, "upbit": UpbitSettings}


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
    #: open connections the venue holds, in all and from one client address (the API's
    #: ``api_max_connections`` and ``api_max_connections_per_client``): beyond them a
    #: connection's request is answered 503 in the protocol's shape
    max_connections: int = Field(default=512, ge=1, le=100_000)
    max_connections_per_client: int = Field(default=128, ge=1, le=100_000)
    #: seconds a request's head may take (from the connection's start or the request's first
    #: byte) and its body after the head; 408 in the protocol's shape beyond (the API's 10, 30)
    head_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_seconds: float = Field(default=30.0, gt=0, le=3600)
    binance: ProtocolConfig = Field(default_factory=_binance)
    upbit: ProtocolConfig = Field(default_factory=_upbit)
    faults: dict[str, Any] = Field(default_factory=dict)

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, value: dict[str, Any]) -> dict[str, Any]:
        Faults().update(value)
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _protocol_settings(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # Each protocol's ``settings`` against its front end's dataclass: the errors keep their
        # place (``binance.settings.ping_every_ms``) and say what the setting takes.
        config = handler(data)
        errors: list[InitErrorDetails] = []
        for protocol, settings_class in PROTOCOL_SETTINGS.items():
            given: ProtocolConfig = getattr(config, protocol)
            checked = _check_settings(protocol, settings_class, given.settings, errors)
            if checked is not None:
                setattr(config, protocol, given.model_copy(update={"settings": checked}))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return config


@cache
def settings_model(settings_class: type) -> type[BaseModel]:
    """A pydantic model of a settings dataclass's fields (their kinds and defaults, see
    :mod:`~sigma.venues.emulator.limits`), refusing any other key: built from the dataclass,
    so the YAML's checks follow its fields."""
    hints = get_type_hints(settings_class, include_extras=True)
    fields: dict[str, Any] = {
        f.name: (hints[f.name], f.default) for f in dataclasses.fields(settings_class) if f.init
    }
    return create_model(
        f"{settings_class.__name__}Fields",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


def _check_settings(
    protocol: str,
    settings_class: type,
    settings: dict[str, Any],
    errors: list[InitErrorDetails],
) -> dict[str, Any] | None:
    """``settings`` checked against ``settings_class`` (the keys given, their values
    converted), or None with ``errors`` added."""
    model = settings_model(settings_class)
    try:
        checked = model.model_validate(settings).model_dump(exclude_unset=True)
    except ValidationError as exc:
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            if error["type"] == "extra_forbidden":
                problem = f"{protocol} has no setting {key!r}"
                allowed = f"the settings of {settings_class.__name__} are " + ", ".join(
                    model.model_fields
                )
            else:
                problem = f"{error['msg']}, got {error['input']!r}"
                allowed = f"{key} takes {_allowed(model, key)}"
            errors.append(_setting_error(protocol, key, error["input"], problem, allowed))
        return None
    try:
        settings_class(**checked)
    except ValueError as exc:
        errors.append(_setting_error(protocol, None, settings, str(exc), None))
        return None
    return checked


def _allowed(model: type[BaseModel], key: str) -> str:
    """What a setting takes, in words: ``a whole number > 0, a multiple of 1000 (default
    60000)``."""
    info = model.model_fields[key]
    kind = "a whole number (not quoted)" if info.annotation is int else "a finite decimal"
    describe: dict[type, Callable[[Any], str]] = {
        Gt: lambda m: f"> {m.gt}",
        Ge: lambda m: f">= {m.ge}",
        Le: lambda m: f"<= {m.le}",
        MultipleOf: lambda m: f"a multiple of {m.multiple_of}",
    }
    bounds = ", ".join(describe[type(m)](m) for m in info.metadata if type(m) in describe)
    return f"{kind} {bounds} (default {info.default})"


def _setting_error(
    protocol: str, key: str | None, value: Any, problem: str, allowed: str | None
) -> InitErrorDetails:
    loc: tuple[str, ...] = (protocol, "settings") + ((key,) if key else ())
    message = f"{problem}; {allowed}" if allowed else problem
    return InitErrorDetails(
        type=PydanticCustomError("protocol_setting", "{message}", {"message": message}),
        loc=loc,
        input=value,
    )


def load_venue_config(path: Path | None = None, **overrides: Any) -> VenueConfig:
    """The settings in the YAML file ``path`` (if any), with ``overrides`` on top (options not
    given are None)."""
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
    protocol has none. ValueError says which option is wrong (and the file, for a setting read
    from it)."""
    try:
        config = load_venue_config(config_file, **options)
    except ValidationError as exc:
        given = {k for k, v in options.items() if v is not None}
        first = exc.errors()[0]
        in_file = config_file is not None and first["loc"] and first["loc"][0] not in given
        raise ValueError(_describe(exc, config_file if in_file else None)) from None
    try:
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
        raise ValueError(_describe(exc, None)) from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    """A refusal's first error as ``[FILE: ]place: message`` (and how many others)."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"])
    text = f"{path}: " if path is not None else ""
    text += f"{where}: {first['msg']}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text
