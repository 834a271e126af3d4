"""Rate limits (weight per window, 429 then 418) and the faults a test can switch on."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest

from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.limits import Verdict, WeightWindow

WINDOW = 60_000
# 5 s into a minute window that starts at 120 s: 55 s of it left.
START = 2 * WINDOW + 5_000


@dataclass
class Clock:
    now: int = START

    def __call__(self) -> int:
        return self.now


def _window(
    limit: int = 10, *, ban_after: int = 2, ban_ms: int = 120_000
) -> tuple[WeightWindow, Clock]:
    clock = Clock()
    window = WeightWindow(
        limit=limit, window_ms=WINDOW, clock=clock, ban_after=ban_after, ban_ms=ban_ms
    )
    return window, clock


def test_weight_adds_up_to_the_limit_then_429_until_the_window_ends() -> None:
    limits, clock = _window()
    assert limits.check("a", 4) == Verdict(200, 4)
    assert limits.check("a", 6) == Verdict(200, 10)
    assert limits.check("a", 1) == Verdict(429, 10, 55)
    assert limits.used("a") == 10
    # Other clients have their own budget.
    assert limits.check("b", 10) == Verdict(200, 10)
    assert limits.used("c") == 0
    # A new window starts afresh and forgets the refusal.
    clock.now = 3 * WINDOW
    assert limits.used("a") == 0
    assert limits.check("a", 10) == Verdict(200, 10)


def test_a_request_over_the_limit_is_refused_even_if_a_lighter_one_would_fit() -> None:
    limits, _ = _window()
    limits.check("a", 8)
    assert limits.check("a", 3).status == 429
    # Refused now until the window ends, whatever the weight.
    assert limits.check("a", 1).status == 429


def test_a_client_that_does_not_back_off_is_banned_with_418() -> None:
    limits, clock = _window(ban_after=2, ban_ms=120_000)
    limits.check("a", 10)
    assert limits.check("a", 1) == Verdict(429, 10, 55)  # the first refusal
    clock.now += 1_000
    assert limits.check("a", 1) == Verdict(429, 10, 54)  # one more
    assert limits.check("a", 1) == Verdict(429, 10, 54)  # two more: ban_after
    assert limits.check("a", 1) == Verdict(418, 10, 120)  # banned for 120 s
    clock.now += 500
    # While banned: 418 with the time left, rounded up to whole seconds.
    assert limits.check("a", 1) == Verdict(418, 10, 120)
    clock.now += 119_000
    assert limits.check("a", 1) == Verdict(418, 10, 1)
    # Another client is not affected.
    assert limits.check("b", 1).status == 200
    clock.now += 500  # the ban is over (and the window is a later one)
    assert limits.check("a", 1) == Verdict(200, 1)
    assert limits.check("a", 9) == Verdict(200, 10)


def test_a_ban_that_ends_inside_a_window_keeps_that_windows_weight() -> None:
    limits, clock = _window(ban_after=0, ban_ms=1_000)
    limits.check("a", 10)
    assert limits.check("a", 1).status == 429
    assert limits.check("a", 1) == Verdict(418, 10, 1)
    clock.now += 1_000
    # The ban is over but this window's weight is spent: a fresh refusal, not a fresh window.
    assert limits.check("a", 1) == Verdict(429, 10, 54)


def test_a_forced_refusal_refuses_only_that_request_and_never_bans() -> None:
    limits, clock = _window(ban_after=1)
    assert limits.check("a", 2) == Verdict(200, 2)
    # A storm: each request refused, told to wait a second, however many there are.
    for _ in range(5):
        assert limits.refuse("a") == Verdict(429, 2, 1)
    # After the storm the client goes on with its window's weight as it was.
    assert limits.check("a", 1) == Verdict(200, 3)
    assert limits.refuse("new") == Verdict(429, 0, 1)
    assert limits.check("new", 10) == Verdict(200, 10)
    clock.now += WINDOW
    assert limits.refuse("a") == Verdict(429, 0, 1)


def test_retry_after_is_at_least_a_second() -> None:
    limits, clock = _window(limit=1)
    clock.now = 3 * WINDOW - 1  # 1 ms left in the window
    limits.check("a", 1)
    assert limits.check("a", 1) == Verdict(429, 1, 1)


# ---------------------------------------------------------------- faults
def test_faults_default_to_none() -> None:
    assert Faults().as_dict() == {
        "latency_ms": 0.0,
        "error_5xx": 0,
        "rate_limit_storm": 0,
        "drop_after_accept": 0,
        "stale_streams": False,
        "clock_skew_ms": 0,
    }


def test_update_sets_known_faults_with_their_types() -> None:
    faults = Faults()
    faults.update({"latency_ms": 25, "error_5xx": 2, "stale_streams": True, "clock_skew_ms": -1500})
    assert faults.latency_ms == 25.0 and isinstance(faults.latency_ms, float)
    assert faults.error_5xx == 2
    assert faults.stale_streams is True
    assert faults.clock_skew_ms == -1500
    faults.update({"stale_streams": False, "latency_ms": 0.5})
    assert faults.stale_streams is False and faults.latency_ms == 0.5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nope": 1}, "unknown fault 'nope'; known: clock_skew_ms, drop_after_accept"),
        ({"error_5xx": True}, "fault 'error_5xx' takes a int, got True"),
        ({"stale_streams": 1}, "fault 'stale_streams' takes a bool, got 1"),
        ({"latency_ms": "5"}, "fault 'latency_ms' takes a float, got '5'"),
        ({"latency_ms": None}, "takes a float"),
        ({"error_5xx": -1}, "fault 'error_5xx' must be >= 0, got -1"),
        ({"latency_ms": -0.5}, "must be >= 0"),
    ],
)
def test_update_refuses_unknown_or_bad_faults(changes: dict[str, object], message: str) -> None:
    faults = Faults()
    with pytest.raises(ValueError, match=re.escape(message)):
        faults.update(changes)
    assert faults == Faults()


def test_a_counted_fault_applies_to_the_next_n_requests() -> None:
    faults = Faults(error_5xx=2)
    assert [faults.take("error_5xx") for _ in range(4)] == [True, True, False, False]
    assert faults.error_5xx == 0
    assert faults.take("rate_limit_storm") is False


async def test_delay_waits_the_latency() -> None:
    loop = asyncio.get_running_loop()
    faults = Faults()
    start = loop.time()
    await faults.delay()
    assert loop.time() - start < 0.05
    faults.update({"latency_ms": 30})
    start = loop.time()
    await faults.delay()
    assert loop.time() - start >= 0.025
