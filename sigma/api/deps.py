"""`ApiDeps`: what the API is handed by whoever serves it, and `api_deps` to take it from the
system the composition root built.

The API never imports the composition root (`sigma.bootstrap`): it names the `App` built there
only by the shape it reads (`System`), and the routes reach nothing of it but these handles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sigma.bus.base import PubSub
from sigma.config import Settings
from sigma.store.handles import Engine, SessionFactory
from sigma.strategies import StrategyRegistry


@dataclass(frozen=True, slots=True)
class ApiDeps:
    """The handles the routes use.

    `settings` is the whole settings tree: the routes read several groups (api, trading,
    risk, regime, process) and `GET /api/settings` shows all of it. `read_sessions` and
    `read_db` are for reads only (on SQLite they never take the write lock); `sessions`
    for writes. `open_bus` opens a bus of the configured kind, for an API that is given none
    (the API then closes it)."""

    settings: Settings
    sessions: SessionFactory
    read_sessions: SessionFactory
    read_db: Engine
    strategies: StrategyRegistry
    open_bus: Callable[[], PubSub]


class System(Protocol):
    """The part of the composition root's `App` (`sigma.bootstrap`) the API is built from."""

    @property
    def settings(self) -> Settings:
        """The settings the process runs with."""

    @property
    def sessions(self) -> SessionFactory:
        """Sessions on the migrated database."""

    @property
    def read_sessions(self) -> SessionFactory:
        """Sessions for work that only reads."""

    @property
    def read_db(self) -> Engine:
        """The engine for read-only work."""

    @property
    def strategies(self) -> StrategyRegistry:
        """The loadable strategies."""

    def pubsub(self) -> PubSub:
        """A new bus of the configured kind."""


def api_deps(system: System) -> ApiDeps:
    """The API's handles from `system` (opening its database, with migrations, when it is
    not open yet)."""
    return ApiDeps(
        settings=system.settings,
        sessions=system.sessions,
        read_sessions=system.read_sessions,
        read_db=system.read_db,
        strategies=system.strategies,
        open_bus=system.pubsub,
    )
