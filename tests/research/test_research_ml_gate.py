"""The ML entry gate: vetoes a long entry when the model's P(up) is under the threshold and a
short one when it is over 1 - threshold, decided on the bars up to the deciding one; stands
aside without a model or while its features warm up; reloads the active versions."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy.orm import Session

from sigma.domain import Order, Side
from sigma.engine.engine import frame_to_data
from sigma.research.ml_gate import WINDOW, ActiveModel, ActiveModels, MLGate, Veto
from sigma.research.ml_tune import TuneConfig, features, save_model, train
from sigma.strategies.series import Data
from tests.research.ml_helpers import LOST, WON, FixedModel, trending_bars

LONG = Order("BTC", Side.BUY, equity_fraction=Decimal(1))
SHORT = Order("BTC", Side.SELL, equity_fraction=Decimal(1))


def at(i: int, n: int = 400) -> Data:
    data = frame_to_data(trending_bars(n))
    data.cursor.i = i
    return data


def gate_of(p_up: float, vetoes: list[Veto] | None = None) -> MLGate:
    models = ActiveModels({"BTC": ActiveModel(3, FixedModel(p_up))})
    return MLGate(models, 0.45, on_veto=None if vetoes is None else vetoes.append)


@pytest.mark.parametrize(
    ("p_up", "long_ok", "short_ok"),
    [
        (0.3, False, True),
        (0.45, True, True),
        (0.5, True, True),
        (0.55, True, True),
        (0.7, True, False),
    ],
)
def test_entries_against_the_call_are_vetoed(p_up: float, long_ok: bool, short_ok: bool) -> None:
    vetoes: list[Veto] = []
    gate = gate_of(p_up, vetoes)
    assert gate.allows(LONG, at(300)) is long_ok
    assert gate.allows(SHORT, at(300)) is short_ok
    refused = [o for ok, o in ((long_ok, LONG), (short_ok, SHORT)) if not ok]
    assert [(v.order, v.p_up, v.version) for v in vetoes] == [(o, p_up, 3) for o in refused]
    assert gate.reason == "ml gate"


def test_no_model_or_features_still_warming_up_allow_everything() -> None:
    assert gate_of(0.0).allows(Order("ETH", Side.BUY, qty=Decimal(1)), at(300))
    assert gate_of(0.0).allows(LONG, at(20))  # the 50-bar average is not there yet
    assert not gate_of(0.0).allows(LONG, at(60))
    with pytest.raises(ValueError, match="threshold"):
        MLGate(ActiveModels(), 0.6)


class Recording:
    """Remembers the feature rows it is asked about."""

    def __init__(self) -> None:
        self.rows: list[npt.NDArray[np.float64]] = []

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        self.rows.append(rows[0])
        return np.array([[0.5, 0.5]])


def test_the_model_sees_the_features_of_the_deciding_bar_from_a_bounded_window() -> None:
    """Once per bar, however many engines ask."""
    model = Recording()
    gate = MLGate(ActiveModels({"BTC": ActiveModel(1, model)}))
    bars = trending_bars(900)
    data = frame_to_data(bars)
    for i in (WINDOW - 1, 450, 899):
        data.cursor.i = i
        gate.allows(LONG, data)
    # Another engine deciding on the same bar (a simulation, another strategy) reuses the call.
    assert gate.allows(SHORT, data)
    assert len(model.rows) == 3
    for row, i in zip(model.rows, (WINDOW - 1, 450, 899), strict=True):
        # As training computes them on the whole history up to bar i (the RSI's smoothing
        # from before the window is spent to well under a millionth).
        expected = features(bars.iloc[: i + 1]).iloc[-1].to_numpy()
        np.testing.assert_allclose(row, expected, rtol=1e-6, atol=1e-9)


def test_the_calls_held_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sigma.research.ml_gate._MAX_CALLS", 2)
    model = Recording()
    models = ActiveModels({"BTC": ActiveModel(1, model)})
    data = frame_to_data(trending_bars(400))
    for i in (300, 301, 302, 300):
        data.cursor.i = i
        models.p_up("BTC", data)
    assert len(model.rows) == 4  # bar 300's call was forgotten when the third came
    assert len(models._calls) <= 2


def test_active_models_follow_the_stored_versions(session: Session) -> None:
    fast = TuneConfig(n_estimators=20)
    bars = trending_bars()
    models = ActiveModels()
    assert not models.reload(session, ["BTC", "ETH"])
    save_model(session, "BTC", train(bars, fast), WON)
    assert models.reload(session, ["BTC", "ETH"])
    first = models.by_symbol["BTC"]
    assert first.version == 1 and set(models.by_symbol) == {"BTC"}
    assert not models.reload(session, ["BTC", "ETH"])
    save_model(session, "ETH", train(bars.iloc[10:], fast), WON)
    assert models.reload(session, ["BTC", "ETH"])
    assert models.by_symbol["BTC"] is first  # unchanged: not unpickled again
    assert models.by_symbol["ETH"].version == 1
    save_model(session, "BTC", train(bars.iloc[20:], fast), LOST)
    assert models.reload(session, ["BTC", "ETH"])
    assert set(models.by_symbol) == {"ETH"}


def test_a_version_deactivated_while_reading_is_not_used(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_model(session, "BTC", train(trending_bars(), TuneConfig(n_estimators=10)), WON)
    # Deactivated between reading the versions and loading the model (another process).
    monkeypatch.setattr("sigma.research.ml_gate.load_active", lambda *args: None)
    models = ActiveModels()
    assert models.reload(session, ["BTC"])
    assert models.by_symbol == {}
