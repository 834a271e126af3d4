"""The fast path's entry sizing: the short path leaves the cash's compensation out only while
that cannot change the lots."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from sigma.strategies import next_open, running
from sigma.strategies.vectorised import Terms


@numba.njit
def _enter(  # pragma: no cover - numba-compiled
    cash: float, comp: float, price: float, terms: Terms, room: next_open.Room
) -> tuple[int, float]:
    _, _, lots, money = next_open.started(room, terms)
    a = next_open.Account(cash, comp, 0.0, 0, 0, 0.0, 0, 0.0, 0.0, 0)
    a, _ = next_open.trade(a, 1, 0, np.full(1, price), terms, lots, money)
    return a.units, a.qty


@pytest.mark.parametrize(
    ("cash", "comp", "units"),
    [
        (100.6, 0.7, 101),  # the compensation carries the cash over a lot boundary
        (100.6, -0.7, 99),
        (100.6, 0.0, 100),
        (100.6, 1e-13, 100),  # small enough to leave out
    ],
)
def test_an_entry_is_sized_on_the_compensated_cash(cash: float, comp: float, units: int) -> None:
    terms = Terms.of(1_000, 0, 0, 1)
    assert _enter(cash, comp, 1.0, terms, next_open.new_room(1, 1)) == (units, float(units))


def test_an_entry_on_cash_and_fixed_fees_buys_what_is_left_after_the_fee() -> None:
    terms = Terms.of(1_000, 0.001, 2.5, 0.01)  # 0.1 % + 2.5 a fill, lots of 0.01
    units, qty = _enter(1_000.0, 0.0, 3.0, terms, next_open.new_room(1, 1))
    assert units == int((1_000.0 - 2.5) / (3.0 * 1.001) / 0.01)
    assert qty == units / 100


def test_a_compounded_whipsaw_on_the_fast_path_is_refused_with_the_reason() -> None:
    # Prices jumping between 1 and 3 at every crossing compound an all-in account past
    # 10^18 within a few hundred round trips: a clear refusal, not an int64 overflow.
    rng = np.random.default_rng(7)
    close = np.repeat(np.round(rng.uniform(1, 3, 800), 2), 7)
    with pytest.raises(next_open.BeyondFastPath, match="use the exact engine"):
        running.sma_cross_run(close, close, 49, 2, True, Terms.of(10_000, 0.001, 0, 1))
