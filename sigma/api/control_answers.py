"""How the API answers a command to the running bot (see `sigma.runtime.operator`)."""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import BaseModel

from sigma.api.context import Principal
from sigma.runtime import operator
from sigma.runtime.commands import BotCommand, CommandAck

SOURCE = "api"
"""The `action_log` source of the API's commands."""


class CommandOut(BaseModel):
    """What became of a command: `delivered` when a bot answered, `ok` and `detail` its
    answer (or what happens without one); `client_order_id` of the order it sent."""

    command_id: str
    delivered: bool
    ok: bool
    detail: str
    client_order_id: str | None = None


def author(user: Principal) -> str:
    """How a command's author is recorded."""
    return f"{SOURCE}:{user.username}"


def stored_answer(ack: CommandAck | None, command: BotCommand) -> CommandOut:
    """The answer to a stored control: the bot's, or that it applies later."""
    if ack is None:
        return CommandOut(
            command_id=command.command_id,
            delivered=False,
            ok=True,
            detail="stored; no running bot answered yet: it applies it when it next reads "
            "the stored controls (within seconds, or at its start)",
        )
    return CommandOut(command_id=ack.command_id, delivered=True, ok=ack.ok, detail=ack.detail)


def order_answer(ack: CommandAck | None, command: BotCommand) -> CommandOut:
    """The answer to an order: 409 when the bot refused it or no bot answered (nothing was
    done either way)."""
    if ack is None:
        raise HTTPException(
            409,
            detail=f"no running bot answered within {operator.ACK_TIMEOUT:g}s: nothing was "
            f"done (command {command.command_id}); check that the bot runs",
        )
    if not ack.ok:
        raise HTTPException(409, detail=ack.detail)
    return CommandOut(
        command_id=ack.command_id,
        delivered=True,
        ok=True,
        detail=ack.detail,
        client_order_id=ack.client_order_id,
    )
