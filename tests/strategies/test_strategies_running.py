"""Running-sum crossovers decide exactly as the textbook `sma` crossovers, ties included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sigma.engine.fast import simulate_targets
from sigma.strategies import running
from sigma.strategies.indicators import sma
from sigma.strategies.pairwise import pairwise_sum, window_sum
from sigma.strategies.running import sma_cross_targets
from sigma.strategies.vectorised import UNCHECKED, Terms


def _textbook(x: np.ndarray, fast: int, slow: int, allow_short: bool = True) -> np.ndarray:
    """The crossings of `sma(fast)` and `sma(slow)`, strict on both bars (as `SmaCross`)."""
    f, s = sma(x, fast), sma(x, slow)
    out = np.full(len(x), np.nan)
    up = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
    down = (s[:-1] < f[:-1]) & (s[1:] > f[1:])
    out[1:][down] = -1.0 if allow_short else 0.0
    out[1:][up] = 1.0
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 100, 128, 129, 200, 1000, 2049])
def test_pairwise_sum_is_numpys(n: int) -> None:
    x = np.random.default_rng(n).normal(100, 30, n + 5)
    assert pairwise_sum(x, 3, n) == np.add.reduce(x[3 : 3 + n])
    if n:
        assert window_sum(x, n + 2, n) == np.add.reduce(x[3 : 3 + n])


@pytest.mark.parametrize(("fast", "slow"), [(2, 3), (5, 15), (10, 20), (7, 130), (50, 400)])
def test_random_walk_crossings_are_the_textbook_ones(fast: int, slow: int) -> None:
    rng = np.random.default_rng(fast * slow)
    x = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 30_000))), 2)
    got = sma_cross_targets(x, fast, slow)
    assert np.count_nonzero(~np.isnan(got)) > 20
    assert _same(got, _textbook(x, fast, slow))
    assert _same(
        sma_cross_targets(x, fast, slow, allow_short=False), _textbook(x, fast, slow, False)
    )


def test_ties_of_flat_and_integer_prices_are_decided_on_textbook_values() -> None:
    """Prices that sit still or move by whole units make the two averages equal again and
    again: every such bar is a near tie, decided on the summed windows."""
    rng = np.random.default_rng(3)
    steps = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], size=20_000)
    for x in (100 + np.cumsum(steps), np.round(0.1 * (1000 + np.cumsum(steps)), 1)):
        for fast, slow in [(2, 4), (3, 9), (10, 20)]:
            got = sma_cross_targets(x, fast, slow)
            assert np.count_nonzero(~np.isnan(got)) > 50
            assert _same(got, _textbook(x, fast, slow))


def test_values_the_bound_does_not_cover_are_summed_afresh() -> None:
    rng = np.random.default_rng(9)
    x = 50 + np.cumsum(rng.normal(0, 1, 5_000))  # crosses zero: negative values
    x[1_000] = np.nan
    x[2_000] = np.inf
    for fast, slow in [(3, 8), (10, 30)]:
        assert _same(sma_cross_targets(x, fast, slow), _textbook(x, fast, slow))


def test_long_histories_are_re_anchored() -> None:
    rng = np.random.default_rng(4)
    x = np.round(1000 * np.exp(np.cumsum(rng.normal(0, 0.001, 3 * running.ANCHOR_BARS))), 2)
    assert _same(sma_cross_targets(x, 4, 9), _textbook(x, 4, 9))


def test_short_histories_and_bad_periods() -> None:
    assert np.isnan(sma_cross_targets(np.ones(3), 2, 5)).all()
    assert len(sma_cross_targets(np.ones(0), 2, 5)) == 0
    with pytest.raises(ValueError, match="period"):
        sma_cross_targets(np.ones(3), 0, 5)
    running.warm_up()


def _executed(
    open_: np.ndarray, x: np.ndarray, fast: int, slow: int, short: bool, terms: Terms
) -> list[Any]:
    """The fast path's run of the crossing targets, as the fused run's fields."""
    out = simulate_targets(
        open_,
        x,
        sma_cross_targets(x, fast, slow, allow_short=short),
        initial_cash=terms.initial_cash,
        commission_pct=terms.commission_pct,
        commission_fixed=terms.commission_fixed,
    )
    return [
        out.equity,
        out.final_cash,
        out.final_qty,
        out.fees,
        out.entry_bar,
        out.exit_bar,
        out.qty.astype(np.int64),
        out.entry_price,
        out.exit_price,
        out.pnl,
    ]


@pytest.mark.parametrize("short", [True, False])
def test_the_fused_run_is_the_targets_executed(short: bool) -> None:
    """Same floats as executing `sma_cross_targets`: on a walk, on one that trades at every
    bar (more round trips than the first book holds), on values the bound does not cover,
    and on one that loses everything (closed out at equity <= 0)."""
    rng = np.random.default_rng(12)
    walk = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.003, 3 * running.ANCHOR_BARS))), 2)
    zigzag = np.where(np.arange(20_000) % 2 == 0, 100.0, 100.01)
    uncovered = walk.copy()
    uncovered[1_500] = np.nan
    # Up, down (a short), then a jump that takes the short's equity below zero.
    crash = np.concatenate([np.linspace(100, 110, 30), np.linspace(110, 50, 60), [1e6, 1e6, 1e6]])
    runs = {}
    fees = Terms.of(10_000, 0.0001, 0.5, 1)
    for x, fast, slow in [(walk, 5, 20), (zigzag, 1, 2), (uncovered, 4, 9), (crash, 2, 5)]:
        # The zigzag fills at its closes, without fees: each round trip gains a little.
        open_ = x if x is zigzag else np.concatenate(([x[0]], x[:-1]))
        terms = Terms.of(10_000, 0, 0, 1) if x is zigzag else fees
        fused = runs[id(x)] = running.sma_cross_run(open_, x, fast, slow, short, terms)
        # The run vouches for its closes when it read them all and all are prices: not with
        # a NaN, nor when the short is closed out before the end.
        vouched = x is not uncovered and not (x is crash and short)
        assert fused[0] == (-1 if vouched else UNCHECKED)
        want = _executed(open_, x, fast, slow, short, terms)
        for got, expected in zip(fused[1:], want, strict=True):
            np.testing.assert_array_equal(got, expected)
    # More round trips than the first book holds: it ran again with more room.
    assert len(runs[id(zigzag)][5]) > len(zigzag) // 8 + running.ANCHOR_BARS
    if short:
        _, equity, cash, *_, exits, _, _, _, _ = runs[id(crash)]
        assert exits[-1] == len(crash) - 3  # closed out at the jump's close
        assert (equity[-3:] == cash).all()
    with pytest.raises(ValueError, match="differ in length"):
        running.sma_cross_run(walk[:-1], walk, 5, 20, short, fees)


def test_equity_is_marked_right_through_long_stretches_turns_and_the_last_bars() -> None:
    """The run marks its equity a run of bars at a time, past a stretch's end when it is
    shorter (the next stretch marks those bars again): long stretches (slow averages), a
    short turned long just before a jump that would have taken the short below zero, and
    the history's last bars, each the same floats as the targets executed bar by bar."""
    rng = np.random.default_rng(3)
    slow_walk = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 5_000))), 2)
    # Up (long), down (short), up again: the crossing turns the short long, then the jump.
    turn = np.concatenate(
        [np.linspace(100, 110, 30), np.linspace(110, 50, 60), np.linspace(52, 60, 5)]
    )
    jump = np.concatenate([turn, [60.0] * 3, [1e6] * 3, [2e6] * 40])
    terms = Terms.of(10_000, 0.0001, 0.5, 1)
    for x, fast, slow in [(slow_walk, 50, 200), (jump, 2, 5), (slow_walk[:250], 3, 7)]:
        open_ = np.concatenate(([x[0]], x[:-1]))
        fused = running.sma_cross_run(open_, x, fast, slow, True, terms)
        assert fused[0] == -1
        want = _executed(open_, x, fast, slow, True, terms)
        for got, expected in zip(fused[1:], want, strict=True):
            np.testing.assert_array_equal(got, expected)
    _, equity, *_ = running.sma_cross_run(
        np.concatenate(([jump[0]], jump[:-1])), jump, 2, 5, True, terms
    )
    assert equity[-1] > 1_000_000  # long through the jump, not closed out as the short


@pytest.mark.parametrize("value", [np.nan, np.inf, 0.0, -3.0])
@pytest.mark.parametrize("at", [0, 18, 19, 1_042, 1_043, 2_999])
def test_the_run_vouches_for_its_opens_only_when_each_is_a_price(value: float, at: int) -> None:
    """The opens are checked a block at a time (and those before the first decision once):
    a bad one anywhere, the first bars and a block's edges included, leaves the run unable
    to vouch for them (`UNCHECKED`), whether or not a fill reads it."""
    rng = np.random.default_rng(4)
    x = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.003, 3_000))), 2)
    open_ = np.concatenate(([x[0]], x[:-1]))
    terms = Terms.of(10_000, 0.0001, 0, 1)
    assert running.sma_cross_run(open_, x, 5, 20, True, terms)[0] == -1
    bad = open_.copy()
    bad[at] = value
    assert running.sma_cross_run(bad, x, 5, 20, True, terms)[0] == UNCHECKED
