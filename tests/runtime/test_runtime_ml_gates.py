"""The running system's gates follow the stored versions: a version activated after the start
(by `sigma scheduler` in another process, say) is used at the next refresh; a failed read
keeps the models held."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sigma.ops.action_log import ActionLogger
from sigma.ops.metrics import Metrics
from sigma.research.ml_tune import TuneConfig, TuneResult, save_model
from sigma.runtime.ml_gates import LiveGates
from sigma.store.db import session_scope
from tests.research.ml_helpers import WON, FixedModel
from tests.runtime.pipeline_helpers import make_app, wait_for


async def test_models_activated_later_are_picked_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    gates = LiveGates(app.sessions, ["XYZ"], 0.45, actions=ActionLogger(None), metrics=Metrics())
    assert not gates.load()
    assert gates.bot.models is gates.sims.models is gates.models
    assert gates.bot.on_veto is not None and gates.sims.on_veto is None
    stop = asyncio.Event()
    refresher = asyncio.create_task(gates.run(stop, every=0.01))
    with session_scope(app.sessions) as session:
        result = TuneResult(FixedModel(0.3), TuneConfig(), {"edge": 0.1})
        save_model(session, "XYZ", result, WON)
    await wait_for(lambda: "XYZ" in gates.models.by_symbol, timeout=10, what="model loaded")
    held = gates.models.by_symbol

    def broken() -> bool:
        raise OSError("database away")

    gates.load = broken  # type: ignore[method-assign]
    await wait_for(lambda: "keeping the ones held" in caplog.text, timeout=10, what="failure")
    assert gates.models.by_symbol is held
    stop.set()
    await asyncio.wait_for(refresher, 5)
    app.close()
