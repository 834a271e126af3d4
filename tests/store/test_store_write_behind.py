"""WriteBehind: writes in order on a thread of their own; a failed one is logged and the next
ones go on; reads wait for the writes before them; close finishes the queue."""

from __future__ import annotations

import logging
import threading

import pytest

from sigma.store.write_behind import WriteBehind


def test_writes_run_in_order_off_the_callers_thread_and_reads_follow_them() -> None:
    writer = WriteBehind("the test rows")
    gate = threading.Event()
    done: list[tuple[str, str]] = []

    def write(name: str) -> None:
        done.append((name, threading.current_thread().name))

    writer.later(gate.wait, 5.0)  # the writer is busy: what follows must queue
    for name in ("a", "b", "c"):
        writer.later(write, name)
    assert done == []  # the caller did not wait for any of them
    gate.set()
    assert writer.after_writes(lambda: [name for name, _ in done]) == ["a", "b", "c"]
    assert {thread for _, thread in done} != {threading.current_thread().name}
    writer.close()


def test_a_failed_write_is_logged_and_the_next_ones_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = WriteBehind("the test rows")
    done: list[str] = []

    def fail() -> None:
        raise RuntimeError("disk full")

    with caplog.at_level(logging.ERROR, logger="sigma.store.write_behind"):
        writer.later(fail)
        writer.later(done.append, "after")
        writer.close()  # finishes the queue
    assert done == ["after"]
    assert "writing the test rows failed; trading continues" in caplog.text
    assert "disk full" in caplog.text
    with pytest.raises(RuntimeError):  # closed
        writer.later(done.append, "too late")
