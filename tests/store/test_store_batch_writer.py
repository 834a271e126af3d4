"""BatchWriter: rows put from the caller are written in batches on a thread of its own; a
failed batch is retried in order; a full queue drops rows instead of blocking; close drains."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest

from sigma.store.batch_writer import BatchWriter


class Sink:
    """Records each batch and the thread that wrote it; fails while `failing` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.failing = threading.Event()
        self.attempts = 0

    def __call__(self, batch: Sequence[int]) -> None:
        self.attempts += 1
        if self.failing.is_set():
            raise RuntimeError("database away")
        self.batches.append(list(batch))
        self.threads.add(threading.current_thread().name)

    @property
    def rows(self) -> list[int]:
        return [row for batch in self.batches for row in batch]


def wait_until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_full_batches_are_written_at_once_off_the_callers_thread() -> None:
    sink = Sink()
    writer = BatchWriter(sink, what="test", batch_rows=3, flush_interval=60.0)
    writer.start()
    for row in range(7):
        assert writer.put(row)
    wait_until(lambda: len(sink.batches) == 2)
    assert sink.batches == [[0, 1, 2], [3, 4, 5]]  # the seventh waits for the interval
    assert threading.current_thread().name not in sink.threads
    assert writer.close() == 0
    assert sink.rows == list(range(7)) and writer.written == 7 and writer.pending == 0


def test_a_partial_batch_is_written_after_the_interval() -> None:
    sink = Sink()
    writer = BatchWriter(sink, what="test", batch_rows=100, flush_interval=0.02)
    writer.start()
    writer.put(1)
    wait_until(lambda: sink.rows == [1])
    writer.close()


def test_a_failed_batch_is_retried_in_order_and_the_queue_drops_when_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    sink.failing.set()
    writer = BatchWriter(
        sink, what="test", batch_rows=2, flush_interval=0.01, max_pending=4, retry_pauses=[0.01]
    )
    writer.start()
    with caplog.at_level(logging.WARNING, logger="sigma.store.batch_writer"):
        assert [writer.put(row) for row in range(6)] == [True] * 4 + [False] * 2
        assert writer.put(99, keep=True)  # kept past the bound
        wait_until(lambda: writer.failures >= 2)
        assert writer.pending == 5
        sink.failing.clear()
        wait_until(lambda: writer.pending == 0)
    assert sink.rows == [0, 1, 2, 3, 99]
    assert writer.dropped == 2 and writer.written == 5
    assert caplog.text.count("rows are dropped") == 1  # once per outage, not per row
    assert "writing 2 rows failed; will retry" in caplog.text
    writer.close()


def test_close_writes_what_is_queued_and_refuses_more() -> None:
    sink = Sink()
    writer = BatchWriter(sink, what="test", batch_rows=1000, flush_interval=60.0)
    writer.start()
    for row in range(2500):
        writer.put(row)
    assert writer.close() == 0
    assert sink.rows == list(range(2500))
    assert [len(b) for b in sink.batches] == [1000, 1000, 500]
    assert not writer.put(1) and writer.dropped == 1


def test_a_closed_writer_started_again_writes_on() -> None:
    sink = Sink()
    writer = BatchWriter(sink, what="test", batch_rows=2, flush_interval=60.0)
    writer.start()
    writer.start()  # idempotent while running
    writer.put(1)
    assert writer.close() == 0
    assert not writer.put(2)
    writer.start()
    assert writer.put(3) and writer.put(4)
    wait_until(lambda: sink.rows == [1, 3, 4])
    assert writer.close() == 0


def test_close_gives_up_after_its_timeout_and_counts_the_rows_lost() -> None:
    sink = Sink()
    sink.failing.set()
    writer = BatchWriter(sink, what="test", batch_rows=10, retry_pauses=[0.02])
    writer.start()
    for row in range(3):
        writer.put(row)
    started = time.monotonic()
    assert writer.close(timeout=0.1) == 3
    assert time.monotonic() - started < 2.0
    assert writer.pending == 0 and sink.attempts >= 2


def test_close_without_start_writes_inline() -> None:
    sink = Sink()
    writer = BatchWriter(sink, what="test")
    writer.put(1)
    assert writer.close() == 0 and sink.rows == [1]


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_rows": 0}, {"max_pending": 0}, {"flush_interval": 0}, {"retry_pauses": []}],
)
def test_settings_are_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        BatchWriter(Sink(), what="test", **kwargs)  # type: ignore[arg-type]
