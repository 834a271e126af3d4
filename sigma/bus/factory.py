"""Pick the bus implementations from configuration: in-process unless a server URL is set."""

from __future__ import annotations

from typing import Any

from sigma.bus.base import WorkQueue
from sigma.bus.cache import CachingPubSub
from sigma.bus.memory import InMemoryPubSub, InMemoryWorkQueue


def make_pubsub(redis_url: str | None, prefix: str = "", **opts: Any) -> CachingPubSub:
    """Redis Pub/Sub (with the last-value cache) when `redis_url` is set, else in-process.

    `opts` go to the implementation (`RedisPubSub` or `InMemoryPubSub`); the in-process bus
    needs no prefix, it is private to this process."""
    if redis_url is None:
        return InMemoryPubSub(**opts)
    from sigma.bus.redis_pubsub import RedisPubSub  # imported lazily: redis is optional here

    return RedisPubSub(redis_url, prefix, **opts)


def make_work_queue(amqp_url: str | None, prefix: str = "", **opts: Any) -> WorkQueue:
    """RabbitMQ when `amqp_url` is set, else in-process.

    `opts` (e.g. `max_retries`, `retry_base_delay`, `retry_max_delay`) go to the
    implementation (`RabbitWorkQueue` or `InMemoryWorkQueue`)."""
    if amqp_url is None:
        return InMemoryWorkQueue(**opts)
    from sigma.bus.rabbitmq import RabbitWorkQueue  # imported lazily: aio-pika is heavy

    return RabbitWorkQueue(amqp_url, prefix, **opts)
