"""Persistence: SQLAlchemy models, Alembic migrations applied at start, and repositories.

Typical start-up::

    engine = init_db(settings.database.database_url)
    sessions = session_factory(engine)
    with session_scope(sessions) as session:
        save_backtest(session, result)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sigma.store.backtest_file import store_backtest
    from sigma.store.backtests import (
        BacktestRecord,
        StoredBacktest,
        get_backtest,
        list_backtests,
        save_backtest,
    )
    from sigma.store.bars import read_bars, upsert_bars
    from sigma.store.db import (
        create_db_engine,
        current_revision,
        head_revision,
        init_db,
        migrate,
        session_factory,
        session_scope,
    )
    from sigma.store.params import (
        ParamChange,
        deactivate_params,
        get_active_params,
        param_history,
        set_params,
    )
    from sigma.store.timescale import has_timescale

# Imported on first use: `import sigma.store.handles` (or any one repository) must not load
# pandas, the engine and every model with it; a spawned worker or a CLI command pays only for
# what it touches.
_HOME: dict[str, str] = {
    "BacktestRecord": "sigma.store.backtests",
    "StoredBacktest": "sigma.store.backtests",
    "get_backtest": "sigma.store.backtests",
    "list_backtests": "sigma.store.backtests",
    "save_backtest": "sigma.store.backtests",
    "store_backtest": "sigma.store.backtest_file",
    "read_bars": "sigma.store.bars",
    "upsert_bars": "sigma.store.bars",
    "create_db_engine": "sigma.store.db",
    "current_revision": "sigma.store.db",
    "head_revision": "sigma.store.db",
    "init_db": "sigma.store.db",
    "migrate": "sigma.store.db",
    "session_factory": "sigma.store.db",
    "session_scope": "sigma.store.db",
    "ParamChange": "sigma.store.params",
    "deactivate_params": "sigma.store.params",
    "get_active_params": "sigma.store.params",
    "param_history": "sigma.store.params",
    "set_params": "sigma.store.params",
    "has_timescale": "sigma.store.timescale",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BacktestRecord",
    "ParamChange",
    "StoredBacktest",
    "create_db_engine",
    "current_revision",
    "deactivate_params",
    "get_active_params",
    "get_backtest",
    "has_timescale",
    "head_revision",
    "init_db",
    "list_backtests",
    "migrate",
    "param_history",
    "read_bars",
    "save_backtest",
    "session_factory",
    "session_scope",
    "set_params",
    "store_backtest",
    "upsert_bars",
]
