"""`indicators.warm_up` readies what the live loop compiles on its first RSI bar."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A fresh interpreter: in this one, other tests may have run RSI already.
LIVE_RSI_AFTER_WARM_UP = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from sigma.domain import Bar
    from sigma.engine.engine import EngineConfig
    from sigma.engine.live import DispatchEngine
    from sigma.strategies import indicators
    from sigma.strategies.builtin import RsiReversion

    assert "numba" not in sys.modules  # compiled on first use, not imported with SIGMA
    indicators.warm_up()
    from sigma.strategies import kernels

    ready = list(kernels.wilder_rsi.signatures)
    assert ready
    engine = DispatchEngine(RsiReversion(), "ACME", EngineConfig(), lambda order, price: None)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(40):
        price = Decimal(100 + i % 7)
        bar = Bar("ACME", t0 + timedelta(minutes=i), price, price, price, price)
        engine.on_live_bar(bar, ref_price=price)
    assert kernels.wilder_rsi.signatures == ready, kernels.wilder_rsi.signatures
    """
)


def test_the_live_loop_compiles_nothing_after_warm_up() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIVE_RSI_AFTER_WARM_UP], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
