"""The composition root: reads the settings once and builds what SIGMA runs on.

Every choice of an implementation is made here and nowhere else: SQLite or PostgreSQL,
in-process or Redis/RabbitMQ buses, the paper broker or a venue's execution client, the
notification channels, the strategies (built-ins and plugins). Every command starts from
`bootstrap`; the components get from the `App` it returns only what each needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sigma.bus.base import PubSub, WorkQueue
from sigma.bus.cache import CachingPubSub
from sigma.bus.memory import InMemoryPubSub, InMemoryWorkQueue
from sigma.config import Settings, load_settings
from sigma.config.venue import VenueSettings, venue_settings
from sigma.engine.fill_model import FillModel
from sigma.execution.broker import Broker, PaperBroker
from sigma.notify import NotificationService, from_settings
from sigma.ops.logging import init_process_logging
from sigma.store.db import init_db, normalize_url, read_engine, session_factory
from sigma.store.handles import Engine, SessionFactory
from sigma.store.outage import DatabaseUnavailable, database_away, outage_message
from sigma.strategies import StrategyRegistry, load_strategies

if TYPE_CHECKING:
    from sigma.venues.ccxt.execution import CcxtExecutionClient

log = logging.getLogger(__name__)


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


@dataclass
class App:
    """What `bootstrap` built for one process: the settings, and the shared resources (built
    on first use, released by `close`) and implementations the settings choose."""

    settings: Settings

    @cached_property
    def db(self) -> Engine:
        """Database engine with migrations applied (the seed's "ORM tables auto-created")."""
        return init_db(self.settings.database.database_url)

    def open_db(self) -> Engine:
        """`db`; when the database is away (unreachable, a damaged or read-only SQLite
        file), `DatabaseUnavailable` saying in one line which database and why."""
        try:
            return self.db
        except Exception as exc:
            if not database_away(exc):
                raise
            url = normalize_url(self.settings.database.database_url)
            raise DatabaseUnavailable(outage_message(exc, url)) from None

    @cached_property
    def sessions(self) -> SessionFactory:
        """Session factory bound to `db`."""
        return session_factory(self.db)

    @cached_property
    def read_db(self) -> Engine:
        """Engine for read-only work (the API's reads, the kill switch): on SQLite its own
        query-only connections, which never take or wait for the write lock; else `db`."""
        return read_engine(self.db)

    @cached_property
    def read_sessions(self) -> SessionFactory:
        """Session factory bound to `read_db`: for work that only reads."""
        return session_factory(self.read_db)

    @cached_property
    def strategies(self) -> StrategyRegistry:
        """Built-in and plugin strategies; broken plugins are logged and skipped."""
        registry = load_strategies(self.settings.trading.strategy_paths)
        for origin, problem in registry.errors.items():
            log.warning("strategy plugin skipped: %s: %s", origin, problem)
        return registry

    @property
    def fill_model(self) -> FillModel:
        """Costs for simulated fills, from settings."""
        s = self.settings.trading
        return FillModel(
            commission_pct=s.commission_pct,
            commission_fixed=s.commission_fixed,
            slippage_bps=s.slippage_bps,
        )

    @cached_property
    def venue(self) -> VenueSettings | None:
        """The venue SIGMA trades on, or None (the built-in market and the paper broker)."""
        return venue_settings(self.settings)

    def pubsub(self, **opts: Any) -> CachingPubSub:
        """A new pub/sub bus of the configured kind (the caller closes it)."""
        bus = self.settings.bus
        return make_pubsub(bus.redis_url, bus.bus_prefix, **opts)

    def work_queue(self) -> WorkQueue:
        """A new order queue of the configured kind (the caller closes it)."""
        bus, retries = self.settings.bus, self.settings.worker.order_max_retries
        return make_work_queue(bus.amqp_url, bus.bus_prefix, max_retries=retries)

    def notifier(self, pubsub: PubSub | None = None) -> NotificationService:
        """The configured notification channels, with the alert log; with `pubsub`, the
        dashboard's channel too."""
        return from_settings(
            self.settings.notify.channel_keys(), session_factory=self.sessions, pubsub=pubsub
        )

    def broker(self) -> Broker:
        """The paper broker, or the venue's execution client when trading live there."""
        if self.venue is None or not self.venue.live:
            return PaperBroker(self.fill_model)
        return self.venue_client()

    def venue_client(self) -> CcxtExecutionClient:
        """The configured venue's execution client for the traded symbols."""
        # Imported here: ccxt takes a while to import and only venue brokers need it.
        from sigma.venues.factory import make_ccxt_broker, venue_markets

        venue = self.venue
        assert venue is not None, "no venue is configured"
        markets = venue_markets(venue.name, self.settings.trading.symbols, venue.markets)
        return make_ccxt_broker(venue.name, markets, venue.ccxt_config)

    def close(self) -> None:
        """Release connections."""
        for name in ("read_db", "db"):
            if name in self.__dict__:
                self.__dict__[name].dispose()


def bootstrap(**overrides: object) -> App:
    """Settings from the environment (with overrides by setting name) wired into an App."""
    settings = load_settings(**overrides)
    # `sigma` commands set this up before (with the log file); for programs that embed SIGMA.
    init_process_logging(settings.process.log_level, None)
    return App(settings)
