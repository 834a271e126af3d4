"""The collector's young generation is relaxed while runs step, and put back after the last."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sigma.engine.collector import RELAXED_YOUNG, collector_relaxed


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_thresholds_are_raised_inside_and_restored_after_the_last_run() -> None:
    with collector_relaxed():
        assert gc.get_threshold() == (RELAXED_YOUNG, 10, 10)
        with collector_relaxed():  # a second run in another thread shares the setting
            assert gc.get_threshold() == (RELAXED_YOUNG, 10, 10)
        assert gc.get_threshold() == (RELAXED_YOUNG, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_when_the_run_fails_and_a_higher_threshold_is_kept() -> None:
    with pytest.raises(RuntimeError), collector_relaxed():
        raise RuntimeError("strategy failed")
    assert gc.get_threshold() == (700, 10, 10)
    gc.set_threshold(2 * RELAXED_YOUNG, 5, 5)
    with collector_relaxed():
        assert gc.get_threshold() == (2 * RELAXED_YOUNG, 5, 5)
    assert gc.get_threshold() == (2 * RELAXED_YOUNG, 5, 5)
