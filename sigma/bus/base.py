"""Bus interfaces. Implementations: in-process (embedded default), Redis Pub/Sub, RabbitMQ.

Messages are bytes (JSON produced by the event models); the bus never interprets them.
Channel and queue names can carry a per-deployment prefix so tests and several SIGMA
instances can share one server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

CHANNEL_PRICE_UPDATE = "price_update"
CHANNEL_FILLS = "fills"
CHANNEL_ORDER_STATUS = "order_status"
CHANNEL_ALERTS = "alerts"
CHANNEL_BOT_CONTROL = "bot_control"
CHANNEL_BOT_CONTROL_ACK = "bot_control_ack"
QUEUE_ORDERS = "orders"


class Subscription(Protocol):
    """Messages published on one channel after the subscription was made."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over incoming messages until closed."""
        ...

    async def close(self) -> None:
        """Stop receiving; iteration ends."""


class PubSub(Protocol):
    """Fire-and-forget fan-out: every current subscriber gets each message (price ticks,
    fills and alerts for dashboards). A subscriber that is not connected misses messages."""

    async def publish(self, channel: str, message: bytes) -> None:
        """Send `message` to the channel's current subscribers."""

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Send each `(channel, message)` in order, in one round trip where the transport
        allows."""

    async def subscribe(self, channel: str) -> Subscription:
        """Start receiving the channel's messages."""

    async def close(self) -> None:
        """Release connections."""


class PublishInDoubt(ConnectionError):
    """The message was sent but its confirmation never came (the connection ended, or the
    wait timed out): the broker may hold it. Only publishing it again with the same message
    id until that is confirmed settles it; consumers dedupe on the id."""


class PermanentError(Exception):
    """Raised by a work-queue handler for a message that can never succeed (malformed,
    unknown schema): it goes to the dead-letter queue at once instead of being retried."""


@dataclass(slots=True)
class Delivery:
    """One message taken from a work queue. `attempt` counts deliveries, starting at 1;
    `final` says the queue dead-letters the message if this try fails too (its retries are
    used up), so the handler can settle what it cannot finish instead of leaving it open."""

    body: bytes
    message_id: str
    attempt: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    final: bool = False


Handler = Callable[[Delivery], Awaitable[None]]


class WorkQueue(Protocol):
    """Durable, acknowledged work distribution (order events).

    `publish` returns once the broker has the message (publisher confirms). `consume` runs
    `handler` per message: success acks it; an exception retries it with backoff up to
    `max_retries`, then moves it to the dead-letter queue `<queue>.dlq` with the error as
    its reason header; a `PermanentError` is dead-lettered without retries. A message
    whose handler never finished (a crashed worker) is
    redelivered, so handlers must be idempotent (the client order id is the key).
    """

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        """Durably enqueue `body`."""

    async def prepare(self, queue: str) -> None:
        """Connect and declare `queue` now, so the first publish pays no set-up and an
        unreachable broker shows at start."""

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 16) -> None:
        """Process messages until `stop` is called or the task is cancelled."""

    async def dead_letters(self, queue: str) -> list[Delivery]:
        """Messages parked in the dead-letter queue of `queue` (drained, for inspection)."""

    async def depth(self, queue: str) -> int:
        """Messages waiting in `queue` (for metrics)."""

    async def stop(self) -> None:
        """Stop consuming after in-flight handlers finish."""

    async def close(self) -> None:
        """Release connections."""
