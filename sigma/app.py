"""Composition root: reads settings once and builds the implementations SIGMA runs on.

Everything that picks between SQLite and PostgreSQL (and, later, in-process or Redis/RabbitMQ
buses, paper or exchange brokers) happens here and nowhere else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sigma.config import Settings, load_settings
from sigma.engine.fill_model import FillModel
from sigma.ops.logging import init_process_logging
from sigma.store.db import init_db, read_engine, session_factory
from sigma.strategies import StrategyRegistry, load_strategies

log = logging.getLogger(__name__)


@dataclass
class App:
    """The wired-up system for one process."""

    settings: Settings

    @cached_property
    def db(self) -> Engine:
        """Database engine with migrations applied (the seed's "ORM tables auto-created")."""
        return init_db(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory bound to `db`."""
        return session_factory(self.db)

    @cached_property
    def read_db(self) -> Engine:
        """Engine for read-only work (the API's reads, the kill switch): on SQLite its own
        query-only connections, which never take or wait for the write lock; else `db`."""
        return read_engine(self.db)

    @cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Session factory bound to `read_db`: for work that only reads."""
        return session_factory(self.read_db)

    @cached_property
    def strategies(self) -> StrategyRegistry:
        """Built-in and plugin strategies; broken plugins are logged and skipped."""
        registry = load_strategies(self.settings.strategy_paths)
        for origin, problem in registry.errors.items():
            log.warning("strategy plugin skipped: %s: %s", origin, problem)
        return registry

    @property
    def fill_model(self) -> FillModel:
        """Costs for simulated fills, from settings."""
        s = self.settings
        return FillModel(
            commission_pct=s.commission_pct,
            commission_fixed=s.commission_fixed,
            slippage_bps=s.slippage_bps,
        )

    def close(self) -> None:
        """Release connections."""
        for name in ("read_db", "db"):
            if name in self.__dict__:
                self.__dict__[name].dispose()


def build_app(**overrides: object) -> App:
    """Settings from the environment (with overrides) wired into an App."""
    settings = load_settings(**overrides)
    # `sigma` commands set this up before (with the log file); for programs that embed SIGMA.
    init_process_logging(settings.log_level, None)
    return App(settings)
