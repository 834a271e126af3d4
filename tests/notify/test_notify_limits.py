from __future__ import annotations

import pytest
from notify_helpers import FakeClock

from sigma.notify import DedupeWindow, TokenBucket


def test_token_bucket_burst_then_refill(clock: FakeClock) -> None:
    bucket = TokenBucket(rate=0.5, burst=2, clock=clock)
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]
    clock.now += 1  # half a token
    assert not bucket.try_take()
    clock.now += 1
    assert bucket.try_take()
    clock.now += 100  # refill is capped at the burst
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(rate=1, burst=0)


def test_dedupe_window_prunes_expired_keys(clock: FakeClock) -> None:
    window = DedupeWindow(10, clock=clock)
    for i in range(1025):
        assert not window.is_duplicate(f"k{i}")
    assert window.is_duplicate("k0")
    assert window._prune_at == 2050  # all 1025 keys live: wait for twice as many
    clock.now += 11
    for i in range(1025):
        assert not window.is_duplicate(f"n{i}")  # k* expired, so no duplicates
    assert len(window._first_seen) == 2050
    assert not window.is_duplicate("fresh")  # crossing the threshold drops expired keys
    assert len(window._first_seen) == 1026
    assert window._prune_at == 2052
