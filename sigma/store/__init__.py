"""Persistence: SQLAlchemy models, Alembic migrations applied at start, and repositories.

Typical start-up::

    engine = init_db(settings.database.database_url)
    sessions = session_factory(engine)
    with session_scope(sessions) as session:
        save_backtest(session, result)
"""

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
    "upsert_bars",
]
