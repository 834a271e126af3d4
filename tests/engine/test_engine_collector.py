"""The collector's young generation is relaxed while runs step, and put back after the last."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sigma.engine.collector import FOREIGN_YOUNG, RELAXED_YOUNG, collector_relaxed, promote_kept


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


class Record:
    """Stands for an order, a fill or a trade: a tracked object the run keeps."""


def test_a_run_s_records_go_to_the_oldest_generation_unwalked() -> None:
    if gc.get_freeze_count():
        pytest.skip("this process keeps objects frozen: nothing is promoted")
    gc.collect()
    with collector_relaxed():
        kept = [Record() for _ in range(3 * FOREIGN_YOUNG)]
        young = gc.get_count()[0]
        assert young >= len(kept)
        assert promote_kept(len(kept))
        assert gc.get_count()[0] < young and any(r is kept[0] for r in gc.get_objects(2))


def test_a_young_generation_of_other_objects_is_left_to_the_collector() -> None:
    gc.collect()
    with collector_relaxed():
        others = [Record() for _ in range(2 * FOREIGN_YOUNG)]
        assert not promote_kept(0)
        assert any(r is others[0] for r in gc.get_objects(0))


def test_frozen_objects_stay_frozen() -> None:
    gc.collect()
    gc.freeze()
    try:
        kept = [Record() for _ in range(10)]
        assert not promote_kept(len(kept))
        # Still frozen: a promotion's `gc.unfreeze` would have emptied the permanent
        # generation. (Its exact count may fall meanwhile: frozen objects can still die.)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
