"""Order events and a recording pub/sub for execution tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sigma.domain import OrderType, Side
from sigma.execution.events import OrderEvent

TS = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def order_event(
    coid: str = "coid-0001",
    side: Side = Side.BUY,
    qty: str = "10",
    ref: str = "100",
    **extra: Any,
) -> OrderEvent:
    """A paper order event."""
    fields: dict[str, Any] = {
        "client_order_id": coid,
        "symbol": "ACME",
        "side": side,
        "type": OrderType.MARKET,
        "qty": Decimal(qty),
        "ref_price": Decimal(ref),
        "strategy": "s1",
        "mode": "paper",
        "created_at": TS,
    }
    fields.update(extra)
    return OrderEvent(**fields)


class RecordingPubSub:
    """Keeps what was published; optionally fails (a bus that went away)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.fail = fail

    async def publish(self, channel: str, message: bytes) -> None:
        if self.fail:
            raise ConnectionError("bus down")
        self.sent.append((channel, message))

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        for channel, message in messages:
            await self.publish(channel, message)

    async def subscribe(self, channel: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None
