"""The profit summary: equity, closed/open/total PnL, win rate and drawdown per strategy
account and in total, balances and exposure per asset, profit per day (read-only).

Each configured (strategy, symbol) trades its own account opened with `initial_cash`, as
`sigma up` runs them; an account that traded but is no longer configured is still counted.
Positions are marked at the last price the API saw on the bus, else the last stored one (a
tick or a bar of the live bar size), else at their average price (no open PnL; `last_price`
null).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from sigma.api.context import Ctx, Db, Viewer
from sigma.api.serialize import dec, opt_dec
from sigma.api.ws import Hub
from sigma.config.settings import timeframe_label
from sigma.domain.money import to_decimal
from sigma.engine.profit import Booking, Mark, Profit, pct, profit
from sigma.store.portfolio import AccountBook, account_books, last_stored_prices

router = APIRouter(prefix="/api", tags=["trading"])
_ZERO = Decimal(0)
CASH = "cash"
"""The asset name of the accounts' cash (the quote currency)."""


class ProfitOut(BaseModel):
    """An account's (or the total's) standing; percentages are of the starting capital,
    except the drawdown's (of the peak it fell from) and the win rate (of closed trades)."""

    starting_capital: str
    cash: str
    position_value: str
    equity: str
    total_pnl: str
    total_pnl_pct: str | None
    closed_pnl: str
    closed_pnl_pct: str | None
    open_pnl: str
    open_pnl_pct: str | None
    fees: str
    trades: int
    wins: int
    losses: int
    win_rate_pct: str | None
    max_drawdown: str
    max_drawdown_pct: str | None


class AccountOut(ProfitOut):
    """One strategy's account on one symbol, with its position."""

    strategy: str
    symbol: str
    qty: str
    avg_price: str
    last_price: str | None


class AssetOut(BaseModel):
    """A balance: the cash, or the net holding of a symbol over every account, and its share
    of the total equity (`exposure_pct`; negative for a short)."""

    asset: str
    qty: str
    price: str | None
    value: str
    exposure_pct: str | None


class DayOut(BaseModel):
    """What one UTC day's fills realised (`net` of fees) and the closed PnL up to it."""

    day: date
    realized_pnl: str
    fees: str
    net: str
    trades: int
    cumulative: str


class PortfolioOut(BaseModel):
    """The profit summary of one mode."""

    mode: str
    total: ProfitOut
    accounts: list[AccountOut]
    assets: list[AssetOut]
    daily: list[DayOut]


def _profit_out(p: Profit) -> ProfitOut:
    capital = p.starting_capital
    return ProfitOut(
        starting_capital=dec(capital),
        cash=dec(p.cash),
        position_value=dec(p.position_value),
        equity=dec(p.equity),
        total_pnl=dec(p.total_pnl),
        total_pnl_pct=opt_dec(pct(p.total_pnl, capital)),
        closed_pnl=dec(p.closed_pnl),
        closed_pnl_pct=opt_dec(pct(p.closed_pnl, capital)),
        open_pnl=dec(p.open_pnl),
        open_pnl_pct=opt_dec(pct(p.open_pnl, capital)),
        fees=dec(p.fees),
        trades=p.trades,
        wins=p.wins,
        losses=p.losses,
        win_rate_pct=opt_dec(p.win_rate_pct),
        max_drawdown=dec(p.max_drawdown),
        max_drawdown_pct=opt_dec(p.max_drawdown_pct),
    )


def _live_prices(hub: Hub) -> dict[str, Decimal]:
    out = {}
    for symbol, data in list(hub.last_prices.items()):
        try:
            out[symbol] = to_decimal(data["price"], name=symbol)
        except (KeyError, TypeError, ValueError):
            continue  # a message without a usable price: fall back to the stored one
    return out


def _mark(symbol: str, book: AccountBook, prices: dict[str, Decimal]) -> Mark:
    return Mark(symbol, book.qty, book.avg_price, prices.get(symbol, book.avg_price))


def _assets(
    marks: list[Mark], cash: Decimal, equity: Decimal, prices: dict[str, Decimal]
) -> list[AssetOut]:
    held: dict[str, tuple[Decimal, Decimal]] = {}
    for m in marks:
        qty, value = held.get(m.symbol, (_ZERO, _ZERO))
        held[m.symbol] = (qty + m.qty, value + m.value)
    out = [
        AssetOut(
            asset=CASH,
            qty=dec(cash),
            price=None,
            value=dec(cash),
            exposure_pct=opt_dec(pct(cash, equity)),
        )
    ]
    for symbol in sorted(held):
        qty, value = held[symbol]
        out.append(
            AssetOut(
                asset=symbol,
                qty=dec(qty),
                price=opt_dec(prices.get(symbol)),
                value=dec(value),
                exposure_pct=opt_dec(pct(value, equity)),
            )
        )
    return out


@router.get("/portfolio", response_model=PortfolioOut)
def portfolio(
    request: Request,
    ctx: Ctx,
    session: Db,
    _: Viewer,
    mode: Literal["live", "paper"] | None = None,
) -> PortfolioOut:
    """The profit summary of `mode` (default: the mode SIGMA trades in)."""
    s = ctx.deps.settings
    chosen = mode or s.trading.mode
    books = account_books(session, chosen)
    for name in s.trading.live_strategies:
        for symbol in s.trading.symbols:
            books.setdefault((name, symbol), AccountBook())
    symbols = sorted({symbol for _, symbol in books})
    hub: Hub = request.app.state.hub
    prices = {
        **last_stored_prices(session, symbols, timeframe_label(s.trading.bar_seconds)),
        **_live_prices(hub),
    }
    capital = s.trading.initial_cash
    accounts: list[AccountOut] = []
    entries: list[Booking] = []
    marks: list[Mark] = []
    for (strategy, symbol), book in sorted(books.items()):
        mark = _mark(symbol, book, prices)
        p = profit(capital, book.entries, [mark])
        accounts.append(
            AccountOut(
                strategy=strategy,
                symbol=symbol,
                qty=dec(book.qty),
                avg_price=dec(book.avg_price),
                last_price=opt_dec(prices.get(symbol)),
                **_profit_out(p).model_dump(),
            )
        )
        entries.extend(book.entries)
        marks.append(mark)
    entries.sort(key=lambda e: e.ts)
    total = profit(capital * len(books), entries, marks)
    return PortfolioOut(
        mode=chosen,
        total=_profit_out(total),
        accounts=accounts,
        assets=_assets(marks, total.cash, total.equity, prices),
        daily=[
            DayOut(
                day=d.day,
                realized_pnl=dec(d.realized_pnl),
                fees=dec(d.fees),
                net=dec(d.net),
                trades=d.trades,
                cumulative=dec(d.cumulative),
            )
            for d in total.daily
        ],
    )
