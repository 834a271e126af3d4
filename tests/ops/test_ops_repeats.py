"""RepeatFilter: repeats of a message within the window fold into a count."""

from __future__ import annotations

import logging

import pytest

from sigma.ops.repeats import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str, *args: object, name: str = "x", level: int = logging.WARNING
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_within_the_window_are_dropped_and_counted() -> None:
    clock = Clock()
    repeats = RepeatFilter(60.0, clock=clock)
    assert repeats.filter(record("bad frame %s", 1))
    for n in range(5):
        clock.now += 1
        assert not repeats.filter(record("bad frame %s", n))
    # Another message, logger or level is its own.
    assert repeats.filter(record("other"))
    assert repeats.filter(record("bad frame %s", 1, name="y"))
    assert repeats.filter(record("bad frame %s", 1, level=logging.ERROR))
    clock.now = 60.0
    after = record("bad frame %s", 9)
    assert repeats.filter(after)
    assert after.getMessage() == "bad frame 9 (repeated 5 times)"
    # A new window: the count starts again, and a lone message gets no suffix.
    clock.now = 200.0
    lone = record("bad frame %s", 10)
    assert repeats.filter(lone) and lone.getMessage() == "bad frame 10"


def test_the_filter_remembers_a_bounded_number_of_messages() -> None:
    repeats = RepeatFilter(60.0, clock=Clock(), max_keys=2)
    for text in ("a", "b", "c"):
        assert repeats.filter(record(text))
    assert repeats.filter(record("a"))  # forgotten, so it passes again
    assert not repeats.filter(record("c"))


def test_on_a_logger_it_folds_tracebacks_too(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.repeats")
    log.addFilter(RepeatFilter(60.0))
    try:
        with caplog.at_level(logging.ERROR, logger="tests.repeats"):
            for n in range(100):
                try:
                    raise ConnectionError("redis down")
                except ConnectionError:
                    log.exception("delivering tick %d failed", n)
    finally:
        log.filters.clear()
    assert [r.getMessage() for r in caplog.records] == ["delivering tick 0 failed"]
    assert caplog.text.count("Traceback") == 1


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window must be positive"):
        RepeatFilter(0)
