"""The ML entry gates of a running system (`SIGMA_ML_GATE`).

One set of active models (`sigma.research.ml_gate.ActiveModels`) is read at start and again
every `REFRESH_SECONDS`, so a version the `ml_tune` job activates - in this process or in a
separate `sigma scheduler` - reaches the engines within a minute. The bot's engines and the
simulations' consult the same models; a veto in the bot is logged, counted
(``sigma_ml_gate_vetoes_total``) and written to the action log, one in a simulation is counted
on its engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sigma.ops.action_log import ActionLogger
from sigma.ops.metrics import Metrics
from sigma.research.ml_gate import REASON, ActiveModels, MLGate, Veto
from sigma.store.handles import SessionFactory

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
ACTION_VETOED = "order_vetoed"


class LiveGates:
    """The bot's gate and the simulations' gate over one set of active models."""

    def __init__(
        self,
        sessions: SessionFactory,
        symbols: Sequence[str],
        threshold: float,
        *,
        actions: ActionLogger,
        metrics: Metrics,
    ) -> None:
        self.sessions = sessions
        self.symbols = list(symbols)
        self.actions = actions
        self.metrics = metrics
        self.models = ActiveModels()
        self.bot = MLGate(self.models, threshold, on_veto=self._vetoed)
        self.sims = MLGate(self.models, threshold)

    def load(self) -> bool:
        """Read the active versions (True when the set in use changed)."""
        with self.sessions() as session:
            return self.models.reload(session, self.symbols)

    async def run(self, stop: asyncio.Event, every: float = REFRESH_SECONDS) -> None:
        """Reload every `every` seconds until `stop`; a failed read keeps the models held."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                await asyncio.to_thread(self.load)
            except Exception:
                log.exception("could not reload the ml gate's models; keeping the ones held")

    def _vetoed(self, veto: Veto) -> None:
        order = veto.order
        side = order.side.value
        self.metrics.ml_gate_vetoes.labels(
            strategy=order.strategy, symbol=order.symbol, side=side
        ).inc()
        self.actions.log(
            ACTION_VETOED,
            strategy=order.strategy,
            symbol=order.symbol,
            side=side,
            reason=REASON,
            p_up=round(veto.p_up, 4),
            model_version=veto.version,
            client_order_id=order.client_order_id,
        )
