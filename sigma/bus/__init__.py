"""Message bus: `PubSub` (fan-out, at most once) and `WorkQueue` (durable, at least once)."""

from sigma.bus.base import (
    CHANNEL_ALERTS,
    CHANNEL_FILLS,
    CHANNEL_ORDER_STATUS,
    CHANNEL_PRICE_UPDATE,
    QUEUE_ORDERS,
    Delivery,
    Handler,
    PermanentError,
    PublishInDoubt,
    PubSub,
    Subscription,
    WorkQueue,
)
from sigma.bus.cache import LAST_PRICE_KEY, CachingPubSub, LastValueCache
from sigma.bus.memory import InMemoryPubSub, InMemoryWorkQueue

__all__ = [
    "CHANNEL_ALERTS",
    "CHANNEL_FILLS",
    "CHANNEL_ORDER_STATUS",
    "CHANNEL_PRICE_UPDATE",
    "LAST_PRICE_KEY",
    "QUEUE_ORDERS",
    "CachingPubSub",
    "Delivery",
    "Handler",
    "InMemoryPubSub",
    "InMemoryWorkQueue",
    "LastValueCache",
    "PermanentError",
    "PubSub",
    "PublishInDoubt",
    "Subscription",
    "WorkQueue",
]
