"""The ML gate in the running system: the active model of a symbol gates the bot's entries
exactly as it gates a backtest on the same bars; its vetoes are logged, counted and written
to the action log; `SIGMA_ML_GATE=false` consults no model."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sigma.domain import Side
from sigma.research.ml_gate import ActiveModel, ActiveModels, MLGate
from sigma.research.ml_tune import TuneConfig, TuneResult, save_model
from sigma.runtime.services import Services
from sigma.store.db import session_scope
from sigma.store.models import ActionLog
from tests.research.ml_helpers import WON, FixedModel
from tests.runtime.pipeline_helpers import (
    SYMBOL,
    assert_matches_backtest,
    bars,
    make_app,
    run_pipeline,
    running,
)

# P(up) 0.4: every long entry is vetoed (under 0.45), short ones go ahead (not over 0.55).
BEARISH = FixedModel(0.4)


def _store_winner(sessions: sessionmaker[Session]) -> None:
    result = TuneResult(BEARISH, TuneConfig(), {"edge": 0.1, "accuracy": 0.6})
    with session_scope(sessions) as session:
        assert save_model(session, SYMBOL, result, WON).active


async def test_the_bot_trades_as_the_gated_backtest(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    _store_winner(app.sessions)
    frame = bars()
    outcome = await run_pipeline(app, frame)
    system = outcome.system
    assert system.gates is not None and system.bot is not None
    assert system.gates.models.by_symbol[SYMBOL].version == 1
    gate = MLGate(ActiveModels({SYMBOL: ActiveModel(1, BEARISH)}))
    assert assert_matches_backtest(outcome, app, frame, entry_gate=gate) > 0
    vetoes = sum(e.vetoes for e in system.bot.engines.values())
    assert vetoes > 0
    for engine in system.bot.engines.values():
        # No long position was opened: every buy that filled closed a short.
        bought = [o for o in engine.orders if o.side is Side.BUY and o.filled_qty > 0]
        assert all(o.reduce_only for o in bought)
    with app.sessions() as s:
        logged = list(
            s.scalars(select(ActionLog.details).where(ActionLog.action == "order_vetoed"))
        )
    assert len(logged) == vetoes
    assert logged[0]["reason"] == "ml gate" and logged[0]["side"] == "buy"
    assert logged[0]["p_up"] == 0.4 and logged[0]["model_version"] == 1
    counted = sum(
        sample.value
        for family in system.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "sigma_ml_gate_vetoes_total"
    )
    assert counted == vetoes
    # The simulations are gated by the same models (without the bot's action log).
    sims = system._engine_config().entry_gate
    assert sims is system.gates.sims and sims.models is system.gates.models
    app.close()


async def test_the_gate_can_be_switched_off(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", ml_gate=False)
    _store_winner(app.sessions)
    async with running(Services(app, ("bot",))) as system:
        assert system.gates is None and system.bot is not None
        assert all(e.config.entry_gate is None for e in system.bot.engines.values())
    app.close()
