"""Redis Pub/Sub bus (fan-out across processes) and the last-value cache in Redis strings.

Pub/Sub is at most once: a subscriber that is disconnected misses what is published in the
meantime. A subscription survives a dropped connection: it reconnects with exponential
backoff, logs each drop and recovery, and resubscribes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub as _RedisPubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

_LINK_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisSubscription:
    """Messages of one Redis channel; reconnects by itself when the connection drops."""

    def __init__(
        self,
        owner: RedisPubSub,
        client: Redis,
        channel: str,
        *,
        poll_interval: float,
        reconnect_initial: float,
        reconnect_max: float,
    ) -> None:
        self._owner = owner
        self._client = client
        self.channel = channel
        self._poll = poll_interval
        self._reconnect_initial = reconnect_initial
        self._reconnect_max = reconnect_max
        self._pubsub: _RedisPubSub | None = None
        self._closed = False
        self._reading = False
        self.reconnects = 0
        """Successful reconnections so far (for metrics and tests)."""

    async def _open(self) -> None:
        """Subscribe on a fresh connection; returns once Redis confirmed the subscription,
        so anything published afterwards is received."""
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            deadline = asyncio.get_running_loop().time() + 10.0
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise RedisTimeoutError(f"no confirmation of SUBSCRIBE {self.channel}")
                reply = await pubsub.get_message(timeout=left)
                if reply is not None and reply["type"] == "subscribe":
                    break
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self._pubsub = pubsub

    async def _drop(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:  # the link is already broken; nothing more to release
                log.debug("closing a broken pubsub connection failed", exc_info=True)

    async def _reconnect(self) -> None:
        delay = self._reconnect_initial
        while not self._closed:
            try:
                await self._open()
            except _LINK_ERRORS as exc:
                log.warning(
                    "redis subscription %s: reconnect failed (%s); next try in %.2fs",
                    self.channel,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(self._reconnect_max, delay * 2)
                continue
            self.reconnects += 1
            log.warning("redis subscription %s: reconnected and resubscribed", self.channel)
            return

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        self._reading = True
        try:
            while not self._closed:
                if self._pubsub is None:
                    await self._reconnect()
                    continue
                try:
                    # A bounded wait (not a blocking read) lets `close()` end the iteration
                    # and lets redis-py send its periodic health-check PING.
                    reply: dict[str, Any] | None = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self._poll
                    )
                except _LINK_ERRORS as exc:
                    if self._closed:
                        break
                    log.warning(
                        "redis subscription %s: connection lost (%s); reconnecting",
                        self.channel,
                        exc,
                    )
                    await self._drop()
                    continue
                if reply is not None and reply["type"] == "message":
                    data: bytes = reply["data"]
                    return data
            raise StopAsyncIteration
        finally:
            self._reading = False
            if self._closed:
                await self._drop()

    async def close(self) -> None:
        """Unsubscribe; an iteration in progress ends within `poll_interval`."""
        if self._closed:
            return
        self._closed = True
        self._owner._subscriptions.discard(self)
        if not self._reading:  # otherwise the reader releases the connection itself
            await self._drop()


class RedisPubSub:
    """`PubSub` over Redis plus a last-value cache (`set_last`/`get_last`).

    `prefix` is prepended to every channel and cache key, so several deployments (or test
    runs) can share one server. `client_name` names the connections (`CLIENT LIST`).
    """

    def __init__(
        self,
        url: str,
        prefix: str = "",
        *,
        client_name: str | None = None,
        poll_interval: float = 0.25,
        reconnect_initial: float = 0.1,
        reconnect_max: float = 5.0,
        health_check_interval: float = 30.0,
    ) -> None:
        self.prefix = prefix
        self._client = Redis.from_url(url, client_name=client_name)
        # Subscriptions use a client without redis-py's silent retries: a dropped link must
        # surface here, so it is logged, backed off and counted.
        self._sub_client = Redis.from_url(
            url,
            client_name=client_name,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=health_check_interval,
            socket_keepalive=True,
        )
        self._options = {
            "poll_interval": poll_interval,
            "reconnect_initial": reconnect_initial,
            "reconnect_max": reconnect_max,
        }
        self._subscriptions: set[RedisSubscription] = set()

    async def publish(self, channel: str, message: bytes) -> None:
        """PUBLISH `message` on the prefixed channel."""
        await self._client.publish(self.prefix + channel, message)

    async def subscribe(self, channel: str) -> RedisSubscription:
        """Subscribe to the prefixed channel; raises if Redis is unreachable right now."""
        sub = RedisSubscription(self, self._sub_client, self.prefix + channel, **self._options)
        await sub._open()
        self._subscriptions.add(sub)
        return sub

    async def set_last(self, key: str, value: bytes) -> None:
        """Store `value` as the latest for `key` (a Redis string `<prefix><key>`)."""
        await self._client.set(self.prefix + key, value)

    async def get_last(self, key: str) -> bytes | None:
        """The latest value stored for `key`, or None."""
        value = await self._client.get(self.prefix + key)
        # The client does not decode responses, so a stored value comes back as bytes.
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def close(self) -> None:
        """End every subscription and close the connections."""
        for sub in list(self._subscriptions):
            await sub.close()
        await self._client.aclose()
        await self._sub_client.aclose()
