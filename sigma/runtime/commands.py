"""Commands to the running bot on the `bot_control` channel, and its answers on
`bot_control_ack`.

Every command names one (strategy, symbol) and carries a command id, its author (the user or
process that gave it) and when it was given. The durable ones (parameters, pin, start/stop,
re-enable) are written to the database before they are published, so a bot that missed the
message still applies them when it reads the stored state (at start, after a lost
connection, and every few seconds); the orders (force entry, close position, cancel) are not
replayed later, when they would no longer mean what the operator meant: their answer says
whether a bot acted on them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "COMMANDS",
    "BotCommand",
    "CancelOrder",
    "ClosePosition",
    "CommandAck",
    "ForceEntry",
    "PinParams",
    "Reenable",
    "SetEnabled",
    "SetParams",
]


def _command_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str = Field(default_factory=_command_id, min_length=8, max_length=64)
    author: str = Field(min_length=1, max_length=64)
    ts: datetime = Field(default_factory=_now)
    strategy: str = Field(min_length=1, max_length=64)
    symbol: str = Field(min_length=1, max_length=32)
    reason: str = Field(default="", max_length=2000)

    def to_bytes(self) -> bytes:
        """Compact JSON for the bus."""
        return self.model_dump_json().encode()


class SetParams(_Command):
    """Use `params`, stored as `version` of `strategy_param`, from the next bar; `pin`: an
    operator's change, which the regime loop leaves alone until allowed again."""

    kind: Literal["set_params"] = "set_params"
    params: dict[str, Any]
    version: int = Field(ge=1)
    pin: bool = False


class PinParams(_Command):
    """Keep the regime loop off the parameters (`pinned`) or let it tune them again."""

    kind: Literal["pin"] = "pin"
    pinned: bool


class SetEnabled(_Command):
    """Start (`enabled`) or stop the strategy: a stopped one opens no new position."""

    kind: Literal["enable"] = "enable"
    enabled: bool


class Reenable(_Command):
    """Lift the regime loop's throttle or disable."""

    kind: Literal["reenable"] = "reenable"


class ForceEntry(_Command):
    """Buy at market for the strategy now: `qty` units, or with all its free cash."""

    kind: Literal["force_entry"] = "force_entry"
    qty: Decimal | None = Field(default=None, gt=0)


class ClosePosition(_Command):
    """Flatten the strategy's position at market (and cancel its resting orders)."""

    kind: Literal["close_position"] = "close_position"


class CancelOrder(_Command):
    """Cancel one resting order of the strategy."""

    kind: Literal["cancel_order"] = "cancel_order"
    client_order_id: str = Field(min_length=8, max_length=64)


BotCommand = Annotated[
    SetParams | PinParams | SetEnabled | Reenable | ForceEntry | ClosePosition | CancelOrder,
    Field(discriminator="kind"),
]
COMMANDS: TypeAdapter[BotCommand] = TypeAdapter(BotCommand)
"""Parses a `bot_control` message (`COMMANDS.validate_json(raw)`)."""


class CommandAck(BaseModel):
    """What a bot did with a command: `ok` and a sentence saying what happened or why not;
    `client_order_id` names the order a force entry or close sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    ok: bool
    detail: str
    client_order_id: str | None = None
    ts: datetime = Field(default_factory=_now)

    def to_bytes(self) -> bytes:
        """Compact JSON for the bus."""
        return self.model_dump_json().encode()
