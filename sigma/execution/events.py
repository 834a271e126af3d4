"""Events that cross the bus between the bot, the order worker and the dashboards.

JSON on the wire; Decimal values travel as strings so no precision is lost.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sigma.domain import Fill, OrderType, Side, TimeInForce
from sigma.domain.money import utc
from sigma.domain.orders import FillIdentity, fill_identity
from sigma.execution.settlement import account_terms, fee_currency

Mode = Literal["live", "paper"]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        """Serialise as compact JSON."""
        return self.model_dump_json().encode()

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, value: object) -> object:
        return utc(value) if isinstance(value, datetime) else value


class OrderEvent(_Event):
    """An accepted order on its way to the worker. `client_order_id` is created once by the
    OrderExecutor and is the idempotency key everywhere downstream. `ref_price` is the price
    the decision was made at; the paper broker fills market orders there (plus slippage)."""

    client_order_id: str = Field(min_length=8, max_length=64)
    symbol: str = Field(min_length=1, max_length=32)
    side: Side
    type: OrderType = OrderType.MARKET
    qty: Decimal = Field(gt=0)
    limit_price: Decimal | None = Field(default=None, gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    ref_price: Decimal = Field(gt=0)
    strategy: str = ""
    mode: Mode = "paper"
    account: str = "default"
    created_at: datetime
    tif: TimeInForce = TimeInForce.GTC
    """How long a limit order may rest: IOC and FOK are passed to the venue (see
    `sigma.venues.ccxt.profile`); a market order fills at once whatever it says."""
    reduce_only: bool = False
    """It may only reduce the position: passed to a venue that takes the flag (derivatives,
    margin); on spot the engine cancels such an order once nothing is left to reduce."""

    @model_validator(mode="after")
    def _priced_as_its_type(self) -> OrderEvent:
        # A limit without its limit, or a stop without its trigger, can never be executed:
        # refusing it here sends it to the dead-letter queue once (PermanentError) instead of
        # failing inside the broker on every retry.
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.type is OrderType.STOP and self.stop_price is None:
            raise ValueError("a stop order needs stop_price")
        return self


class OrderBatch(_Event):
    """Orders decided together (on one bar), sent as one queue message so the worker gets
    and books them at once. Each keeps its own client order id: a batch delivered again
    books none of its orders twice."""

    orders: list[OrderEvent] = Field(min_length=1)


class CancelEvent(_Event):
    """A request to cancel an order the strategy no longer wants (`go_long`, `go_flat`, ...),
    sent on the order queue like the order itself. The worker cancels it at the broker and
    books the outcome: cancelled, with any fills that happened first, or as it finished when
    it finished before the cancel. `kind` tells it apart from an `OrderEvent` on the queue."""

    kind: Literal["cancel"] = "cancel"
    client_order_id: str = Field(min_length=8, max_length=64)
    symbol: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=200)
    created_at: datetime

    @classmethod
    def parse(cls, body: bytes) -> CancelEvent | None:
        """The cancel request in a queue message body; None when the body is not one (an
        order, a batch, or something the order parser will refuse)."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict) or data.get("kind") != "cancel":
            return None
        return cls.model_validate(data)


class FillEvent(_Event):
    """An execution reported by the worker after it is stored."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal = Field(gt=0)
    price: Decimal = Field(gt=0)
    fee: Decimal = Field(ge=0)
    ts: datetime
    strategy: str = ""
    mode: Mode = "paper"
    account: str = "default"
    fill_id: str = ""
    """The broker's id of the execution ("" when it gave none)."""

    def to_fill(self) -> Fill:
        """The domain fill."""
        return Fill(
            self.client_order_id,
            self.symbol,
            self.side,
            self.qty,
            self.price,
            self.fee,
            self.ts,
            self.strategy,
            self.fill_id,
        )

    @property
    def identity(self) -> FillIdentity:
        """What tells this fill from another (`fill_identity`)."""
        return fill_identity(self.client_order_id, self.fill_id, self.qty, self.price, self.ts)


class BookedFill(Protocol):
    """A fill as the broker reported it and the worker stored it."""

    @property
    def qty(self) -> Decimal: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def fee(self) -> Decimal: ...
    @property
    def fee_asset(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def fill_id(self) -> str | None: ...


def account_fill(
    client_order_id: str,
    symbol: str,
    side: Side,
    strategy: str,
    mode: str,
    fill: BookedFill,
    currencies: tuple[str, str],
) -> FillEvent:
    """`fill` as the bot's strategy account books it (as `positions` and `ledger` do): a fee
    in the asset bought comes off the quantity held, not off the cash. `currencies` are the
    instrument's (base, quote); ("", "") when unknown, and the fee is then taken as cash.

    The worker announces each fill so; the bot rebuilds a stored fill it missed so, to the
    same values (its engine knows a fill booked twice by them)."""
    currency = fee_currency(fill.fee_asset, *currencies)
    qty, fee = account_terms(side, fill.qty, fill.price, fill.fee, currency)
    return FillEvent(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        qty=qty,
        price=fill.price,
        fee=fee,
        ts=fill.ts,
        strategy=strategy,
        mode="live" if mode == "live" else "paper",
        fill_id=fill.fill_id or "",
    )


class OrderStatusEvent(_Event):
    """An order changed state (accepted, filled, rejected, dead-lettered). From the worker,
    `ts` is when the change was committed (what `benchmarks/live_latency.py` measures to)."""

    client_order_id: str
    symbol: str
    status: str
    reason: str = ""
    ts: datetime
