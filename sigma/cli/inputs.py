"""Reading the options `sigma backtest` and `sigma optimize` share: strategy parameters,
costs, the history window; a value they cannot use is a `BadValue` naming its option."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from sigma.cli.failures import BadValue
from sigma.config import Settings
from sigma.domain.text import clip
from sigma.engine.fill_model import FillModel, FillModelError, FillTiming
from sigma.engine.margin import AccountType, MarginModel, MarginModelError
from sigma.feeds.limits import limits_of
from sigma.feeds.loaders import load_bars
from sigma.feeds.normalise import HAS_SYMBOLS
from sigma.feeds.resample import resample_bars
from sigma.feeds.timestamps import parse_iso
from sigma.strategies import Strategy, StrategyRegistry


def parse_params(items: list[str]) -> dict[str, str]:
    """Turn `k=v` strings into a dict; a malformed item is a BadValue naming it."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadValue("--param", f"expected key=value, got {clip(repr(item))}")
        params[key.strip()] = value.strip()
    return params


def parse_decimal(value: str, option: str) -> Decimal:
    """A finite number given to `option`; BadValue naming it otherwise."""
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise BadValue(option, f"not a number: {clip(repr(value))}") from None
    if not result.is_finite():
        raise BadValue(option, f"must be finite, got {value!r}")
    return result


MIN_CASH = Decimal("1e-10")
MAX_CASH = Decimal("1e15")
"""The initial cash a backtest accepts. Amounts are stored as NUMERIC(28, 10): less than
1e-10 is stored as 0, and above 1e15 an account that grows a thousandfold no longer fits the
18 digits before the point (nor the reports' 28-digit arithmetic)."""


def parse_cash(value: str) -> Decimal:
    """The `--cash` amount; BadValue unless it lies in [`MIN_CASH`, `MAX_CASH`]."""
    cash = parse_decimal(value, "--cash")
    if cash <= 0:
        raise BadValue("--cash", f"must be positive, got {value}")
    if not MIN_CASH <= cash <= MAX_CASH:
        raise BadValue("--cash", f"must be between {MIN_CASH:f} and {MAX_CASH:,f}, got {value}")
    return cash


def report_folder(out: Path | None) -> Path | None:
    """The `--out` folder, made now: a file or a place it cannot be made is a BadValue before
    the run rather than a traceback after it."""
    if out is None:
        return None
    if out.exists() and not out.is_dir():
        raise BadValue("--out", f"{out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadValue("--out", f"cannot make the folder {out}: {exc.strerror}") from None
    return out


_FILL_OPTIONS = {
    "commission_pct": "--commission",
    "commission_fixed": "--commission-fixed",
    "slippage_bps": "--slippage-bps",
    "lot_size": "--lot-size",
}


def fill_model_of(
    settings: Settings,
    *,
    commission: str | None,
    commission_fixed: str | None,
    slippage_bps: str | None,
    lot_size: str,
    timing: FillTiming,
) -> FillModel:
    """The fill model the options ask for (the settings' costs where an option is left out);
    a value out of range is a BadValue naming its option."""
    given = {
        "commission_pct": commission,
        "commission_fixed": commission_fixed,
        "slippage_bps": slippage_bps,
        "lot_size": lot_size,
    }
    defaults = {
        "commission_pct": settings.trading.commission_pct,
        "commission_fixed": settings.trading.commission_fixed,
        "slippage_bps": settings.trading.slippage_bps,
    }
    values = {
        field: parse_decimal(text, _FILL_OPTIONS[field]) if text is not None else defaults[field]
        for field, text in given.items()
    }
    try:
        return FillModel(**values, timing=timing)
    except FillModelError as exc:
        raise BadValue(_FILL_OPTIONS[exc.field], exc.reason) from None


def create_compared(
    registry: StrategyRegistry, compare: str, params: dict[str, str]
) -> list[Strategy]:
    """The strategies of ``--compare``: names, or parameter sets of one strategy
    (``sma_cross:fast=5,sma_cross:fast=10:slow=40``). Each takes the ``--param`` values it
    declares, under its own; a ``--param`` no compared strategy declares is refused."""
    entries = []
    for entry in (e.strip() for e in compare.split(",")):
        if entry:
            name, *sets = (part.strip() for part in entry.split(":"))
            entries.append((name, parse_params(sets)))
    names = [name for name, _ in entries]
    shared = create_strategies(registry, list(dict.fromkeys(names)), params, "--compare")
    if not any(own for _, own in entries):
        return [next(s for s in shared if s.name == name) for name in names]
    strategies = []
    for name, given in entries:
        declared = registry.get(name).param_specs()
        merged = {k: v for k, v in params.items() if k in declared} | given
        strategies.extend(create_strategies(registry, [name], merged, "--compare"))
    return strategies


_MARGIN_OPTIONS = {"leverage": "--leverage", "maintenance": "--maintenance-margin"}

# The account options, declared once for every command that trades (read by margin_model_of).
AccountOption = Annotated[
    AccountType, typer.Option(help="spot: no borrowing or shorts; margin/futures: leverage")
]
LeverageOption = Annotated[str, typer.Option(help="1 to 125 (spot: 1)")]
MaintenanceOption = Annotated[
    str, typer.Option(help="maintenance margin rate, 0.005 = 0.5% of exposure")
]


def margin_model_of(account: AccountType, leverage: str, maintenance: str) -> MarginModel:
    """The account the options ask for; a value out of range is a BadValue naming its
    option."""
    try:
        return MarginModel(
            account,
            parse_decimal(leverage, "--leverage"),
            parse_decimal(maintenance, "--maintenance-margin"),
        )
    except MarginModelError as exc:
        raise BadValue(_MARGIN_OPTIONS[exc.field], exc.reason) from None


def parse_time(value: str | None, option: str) -> pd.Timestamp | None:
    """A --start/--end value as a UTC time (`parse_iso`: ISO 8601, naive is UTC)."""
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise BadValue(
            option,
            f"not an ISO 8601 time (e.g. 2024-01-31 or 2024-01-31T12:00Z): {clip(repr(value))}",
        ) from None


def parse_window(
    start: str | None, end: str | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The `--start`/`--end` times; BadValue when the end comes before the start."""
    lo, hi = parse_time(start, "--start"), parse_time(end, "--end")
    if lo is not None and hi is not None and hi < lo:
        raise BadValue("--end", f"{end} is before --start {start}")
    return lo, hi


def load_history(
    settings: Settings,
    data: str,
    *,
    symbol: str | None,
    start: str | None = None,
    end: str | None = None,
    timeframe: str | None = None,
) -> pd.DataFrame:
    """The bars of `data` the options select, checked (DataError naming the source and row)
    and resampled to `timeframe`; files are read within the settings' input limits. A
    `symbol` the data has no column for is said on stderr: it then only names the bars."""
    if not data:
        raise BadValue("--data", "a data source is required")
    lo, hi = parse_window(start, end)
    bars = load_bars(
        data,
        symbol=symbol,
        start=lo,
        end=hi,
        database_url=settings.database.database_url,
        limits=limits_of(settings),
    )
    if symbol and not bars.attrs.get(HAS_SYMBOLS, True):
        # Not an error (a one-instrument file is named this way), but not silent either.
        typer.echo(
            f"note: {data} has no symbol column: --symbol {symbol} names its bars, it selects none",
            err=True,
        )
    if not timeframe:
        return bars
    try:
        return resample_bars(bars, timeframe)
    except ValueError as exc:
        raise BadValue("--timeframe", str(exc)) from None


def create_strategies(
    registry: StrategyRegistry, names: list[str], params: dict[str, str], option: str
) -> list[Strategy]:
    """Strategies `names` (from `option`) with `params`. Several strategies each take the
    parameters they declare; a parameter none of them declares is refused."""
    try:
        classes = [registry.get(name) for name in names]
    except KeyError as exc:
        raise BadValue(option, str(exc.args[0])) from None
    if len(classes) > 1:
        declared = {key for cls in classes for key in cls.param_specs()}
        unknown = sorted(set(params) - declared)
        if unknown:
            raise BadValue(
                "--param", f"no strategy of {option} has parameter(s) {', '.join(unknown)}"
            )
    strategies = []
    for cls in classes:
        own = {k: v for k, v in params.items() if len(classes) == 1 or k in cls.param_specs()}
        try:
            strategies.append(cls(**own))
        except ValueError as exc:
            raise BadValue("--param", f"{cls.name}: {exc}") from None
    return strategies
