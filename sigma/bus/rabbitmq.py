"""RabbitMQ work queue (aio-pika): durable, acknowledged, retried, dead-lettered.

Topology for a queue `q` (names carry the instance prefix):

* `q` – durable; messages persistent; consumers ack manually after the handler returns.
* `q.retry.<ms>ms` – one durable queue per backoff delay, with that queue-level TTL and
  dead-lettering back to `q`. A failed message is copied there with `x-attempt` + 1 and
  the original is acked only after the broker confirmed the copy, so a worker dying during
  the backoff loses nothing (the copy waits in the broker, not in the worker). One queue per
  delay, rather than a per-message TTL, because RabbitMQ only expires messages at the head
  of a queue: a long delay in front would hold shorter ones back.
* `q.dlq` – durable; after `max_retries` retries the message lands here with `x-error`
  (exception type and message, truncated) and `x-attempts`.

A message whose handler never finished (worker crash, closed channel) is redelivered by the
broker with the same `message_id`; handlers dedupe on it (the client order id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import (
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    DeliveryError,
    PublishError,
)

from sigma.bus.base import Delivery, Handler, PermanentError, PublishInDoubt
from sigma.bus.memory import backoff_delay, error_reason

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-attempt"
ERROR_HEADER = "x-error"
ATTEMPTS_HEADER = "x-attempts"
REDELIVERED_HEADER = "x-redelivered"
# Added by the broker when the retry queue dead-letters a message back; not ours to forward.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


def _own_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        k: v
        for k, v in (headers or {}).items()
        if not any(k.startswith(prefix) for prefix in _BROKER_HEADERS)
    }


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Consumer:
    """One `consume` call: its channel, its handler tasks and how it ends."""

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self.queue: AbstractQueue | None = None
        self.tag: str | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.finished = asyncio.Event()


class RabbitWorkQueue:
    """`WorkQueue` over RabbitMQ with a robust (auto-reconnecting) connection.

    `publish` returns after the broker confirmed the persistent message. Retries wait
    `retry_base_delay · 2^(n-1)` seconds (capped at `retry_max_delay`) in the broker.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "",
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
        *,
        retry_max_delay: float = 60.0,
        publish_timeout: float = 30.0,
        connection_name: str = "sigma-bus",
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.publish_timeout = publish_timeout
        self.connection_name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._connect_lock = asyncio.Lock()
        self._declared: set[str] = set()
        self._consumers: set[_Consumer] = set()

    # --- names and plumbing ---------------------------------------------------------------

    @property
    def where(self) -> str:
        """The broker's URL without its password (for messages)."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    def queue_name(self, queue: str) -> str:
        """Broker name of `queue` (with the prefix)."""
        return self.prefix + queue

    def dlq_name(self, queue: str) -> str:
        """Broker name of the dead-letter queue of `queue`."""
        return f"{self.prefix}{queue}.dlq"

    def _retry_ms(self, failed_attempt: int) -> int:
        delay = backoff_delay(self.retry_base_delay, failed_attempt, self.retry_max_delay)
        return max(1, round(delay * 1000))

    def retry_queue_names(self, queue: str) -> list[str]:
        """Broker names of the retry queues `queue` can use with the current settings."""
        delays = sorted({self._retry_ms(n) for n in range(1, self.max_retries + 1)})
        return [f"{self.prefix}{queue}.retry.{ms}ms" for ms in delays]

    async def _publish_channel(self) -> AbstractChannel:
        async with self._connect_lock:
            if self._connection is None:
                try:
                    self._connection = await aio_pika.connect_robust(
                        self.url, client_properties={"connection_name": self.connection_name}
                    )
                except OSError as exc:
                    # aiormq's own words ("[Errno 111] Connection refused") name no server.
                    raise ConnectionError(
                        f"cannot reach RabbitMQ at {self.where}: {exc.strerror or exc}"
                    ) from exc
            if self._channel is None:
                # Confirms on: `publish` resolves when the broker has the message. Returns
                # raise: a message routed to no queue must fail loudly, not vanish.
                self._channel = await self._connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            return self._channel

    async def _declare(self, name: str, arguments: dict[str, Any] | None = None) -> None:
        if name in self._declared:
            return
        channel = await self._publish_channel()
        await channel.declare_queue(name, durable=True, arguments=arguments)
        self._declared.add(name)

    async def _send(self, name: str, body: bytes, message_id: str, headers: dict[str, Any]) -> None:
        channel = await self._publish_channel()
        message = aio_pika.Message(
            body,
            message_id=message_id,
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await channel.default_exchange.publish(
                message, routing_key=name, timeout=self.publish_timeout
            )
        except (ChannelInvalidStateError, DeliveryError, PublishError):
            raise  # not sent (channel closed), refused (nack) or returned: the broker lacks it
        except Exception as exc:
            raise PublishInDoubt(
                f"no confirmation of {message_id} on {name} (the broker may have it): {exc!r}"
            ) from exc

    # --- WorkQueue --------------------------------------------------------------------------

    async def prepare(self, queue: str) -> None:
        """Open the publishing channel and declare `queue`."""
        await self._declare(self.queue_name(queue))

    async def publish(self, queue: str, body: bytes, *, message_id: str) -> None:
        """Durably enqueue `body`; returns once the broker confirmed it."""
        name = self.queue_name(queue)
        await self._declare(name)
        await self._send(name, body, message_id, {})

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 16) -> None:
        """Run `handler` on up to `prefetch` messages at a time until `stop()`/`close()` or
        cancellation. On cancellation the handlers in flight are cancelled and their
        messages, never acked, are redelivered by the broker."""
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        await self._publish_channel()
        assert self._connection is not None
        # A channel per consumer: prefetch applies per consumer, and closing it hands the
        # unacked messages back to the broker without touching other consumers.
        consumer = _Consumer(await self._connection.channel())
        self._consumers.add(consumer)
        try:
            await consumer.channel.set_qos(prefetch_count=prefetch)
            consumer.queue = await consumer.channel.declare_queue(
                self.queue_name(queue), durable=True
            )

            async def on_message(message: AbstractIncomingMessage) -> None:
                if consumer.stopping:  # delivered between cancel and cancel-ok
                    await message.nack(requeue=True)
                    return
                task = asyncio.create_task(self._handle(queue, message, handler))
                consumer.tasks.add(task)
                task.add_done_callback(consumer.tasks.discard)

            consumer.tag = await consumer.queue.consume(on_message)
            await consumer.finished.wait()
        finally:
            consumer.stopping = True
            for task in list(consumer.tasks):
                task.cancel()
            await asyncio.gather(*consumer.tasks, return_exceptions=True)
            # Closing the channel returns its unacked messages to the broker. Bounded and
            # done before `close()` closes the connection underneath it.
            with contextlib.suppress(Exception):  # already closed with its connection
                await asyncio.wait_for(consumer.channel.close(), 5.0)
            self._consumers.discard(consumer)

    async def _handle(self, queue: str, message: AbstractIncomingMessage, handler: Handler) -> None:
        headers = _own_headers(message.headers)
        attempt = int(headers.get(ATTEMPT_HEADER, 1))
        delivery = Delivery(
            message.body,
            message.message_id or "",
            attempt,
            {k: _text(v) for k, v in headers.items() if k != ATTEMPT_HEADER},
            final=attempt > self.max_retries,
        )
        if message.redelivered:
            delivery.headers[REDELIVERED_HEADER] = "true"
        try:
            try:
                await handler(delivery)
            except asyncio.CancelledError:
                raise  # not acked: the broker redelivers it
            except Exception as exc:
                await self._retry_or_dead_letter(queue, message, headers, attempt, exc)
            await message.ack()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The channel or connection failed before the ack: the broker redelivers the
            # message (handlers are idempotent), so log and carry on.
            log.warning(
                "could not settle message %s on %s; it will be redelivered",
                delivery.message_id,
                queue,
                exc_info=True,
            )

    async def _retry_or_dead_letter(
        self,
        queue: str,
        message: AbstractIncomingMessage,
        headers: dict[str, Any],
        attempt: int,
        exc: Exception,
    ) -> None:
        message_id = message.message_id or ""
        if attempt > self.max_retries or isinstance(exc, PermanentError):
            log.warning(
                "dead-lettering %s on %s after %d attempts: %r", message_id, queue, attempt, exc
            )
            name = self.dlq_name(queue)
            await self._declare(name)
            headers = {k: v for k, v in headers.items() if k != ATTEMPT_HEADER}
            headers.update({ERROR_HEADER: error_reason(exc), ATTEMPTS_HEADER: attempt})
            await self._send(name, message.body, message_id, headers)
            return
        ms = self._retry_ms(attempt)
        name = f"{self.prefix}{queue}.retry.{ms}ms"
        await self._declare(
            name,
            {
                "x-message-ttl": ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue_name(queue),
            },
        )
        log.info(
            "retrying %s on %s in %dms (attempt %d failed: %r)", message_id, queue, ms, attempt, exc
        )
        await self._send(name, message.body, message_id, {**headers, ATTEMPT_HEADER: attempt + 1})

    async def dead_letters(self, queue: str) -> list[Delivery]:
        """Drain the dead-letter queue of `queue`; each has headers `x-error`, `x-attempts`."""
        name = self.dlq_name(queue)
        await self._declare(name)
        out: list[Delivery] = []
        channel = await self._publish_channel()
        dlq = await channel.get_queue(name, ensure=False)
        while (message := await dlq.get(fail=False)) is not None:
            headers = {k: _text(v) for k, v in _own_headers(message.headers).items()}
            attempts = int(headers.get(ATTEMPTS_HEADER, 1))
            out.append(Delivery(message.body, message.message_id or "", attempts, headers))
            await message.ack()
        return out

    async def depth(self, queue: str) -> int:
        """Messages ready in `queue` (0 when it does not exist yet)."""
        await self._publish_channel()
        assert self._connection is not None
        # A passive declare of a missing queue closes its channel: use a throwaway one.
        channel = await self._connection.channel()
        try:
            declared = await channel.declare_queue(self.queue_name(queue), passive=True)
        except ChannelNotFoundEntity:
            return 0
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        count = declared.declaration_result.message_count
        return int(count or 0)

    async def delete_queues(self, queue: str) -> None:
        """Delete `queue`, its dead-letter queue and its retry queues (tests, teardown)."""
        channel = await self._publish_channel()
        names = [self.queue_name(queue), self.dlq_name(queue), *self.retry_queue_names(queue)]
        for name in names:
            await channel.queue_delete(name)
            self._declared.discard(name)

    async def stop(self) -> None:
        """Cancel the consumers, then wait for the handlers in flight to finish (and ack)."""
        consumers = list(self._consumers)
        for consumer in consumers:
            consumer.stopping = True
            if consumer.queue is not None and consumer.tag is not None:
                with contextlib.suppress(Exception):  # channel already gone: nothing to cancel
                    await consumer.queue.cancel(consumer.tag)
        for consumer in consumers:
            while consumer.tasks:
                await asyncio.gather(*consumer.tasks, return_exceptions=True)
            consumer.finished.set()

    async def close(self) -> None:
        """Close the connection at once: handlers in flight are cancelled and their
        messages redelivered by the broker (use `stop()` first for a graceful end)."""
        for consumer in list(self._consumers):
            consumer.finished.set()
        # Let each `consume` run its cleanup (cancel handlers, close its channel); bounded,
        # in case a `consume` task is itself blocked and never resumes.
        deadline = asyncio.get_running_loop().time() + 5.0
        while self._consumers and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.001)
        self._channel = None
        self._declared.clear()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
