"""Message bus: `PubSub` (fan-out, at most once) and `WorkQueue` (durable, at least once)."""

from sigma.bus.base import (
    CHANNEL_ALERTS,
    CHANNEL_FILLS,
    CHANNEL_ORDER_STATUS,
    CHANNEL_PRICE_UPDATE,
    QUEUE_ORDERS,
    Delivery,
    Handler,
    PubSub,
    Subscription,
    WorkQueue,
)

__all__ = [
    "CHANNEL_ALERTS",
    "CHANNEL_FILLS",
    "CHANNEL_ORDER_STATUS",
    "CHANNEL_PRICE_UPDATE",
    "QUEUE_ORDERS",
    "Delivery",
    "Handler",
    "PubSub",
    "Subscription",
    "WorkQueue",
]
