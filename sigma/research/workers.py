"""The processes that share an optimisation study: how many to start, spawning them, and the
entry point each runs (`join_study`, which another machine can call too).

Spawned workers import this module, not `sigma.research.optimize`: they need the objective,
the study and the trial loop, and (for a journal file's study) never the store.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna

from sigma.research.study import Method, load_study, study_storage
from sigma.research.trials import TrialObjective, run_trials

# Workers wait this long for each other to start (spawned processes import numba and optuna).
_START_TIMEOUT = 120.0

_PARALLEL_FROM_SECONDS = 10.0
"""Studies expected to take less than this in one process run in one: a spawned worker needs
seconds to import numpy, numba and optuna, and a shared study's storage slows every trial."""


class WorkerFailed(RuntimeError):
    """A spawned optimisation worker could not start."""


def default_workers(workers: int | None = None) -> int:
    """`workers`, or one per core when None."""
    if workers is None:
        return max(os.cpu_count() or 1, 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return workers


def auto_workers(expected_seconds: float) -> int:
    """Processes for a study expected to take `expected_seconds` in one: one per core when
    that is long enough to repay starting them, else one."""
    return default_workers() if expected_seconds >= _PARALLEL_FROM_SECONDS else 1


@dataclass(frozen=True, slots=True)
class _StartLine:
    """Lines spawned workers up with the parent so they really share the work: each says it
    is ready, then waits for the parent's go. Unlike a barrier, the parent sees a worker that
    died before it got there (it could not import the strategy) at once."""

    ready: Any
    go: Any

    def arrive(self) -> None:
        self.ready.release()
        self.go.wait(_START_TIMEOUT)

    def wait_for(self, children: Sequence[multiprocessing.process.BaseProcess]) -> None:
        """Return once every child arrived; WorkerFailed when one ended first or none came
        within the start timeout."""
        deadline = time.monotonic() + _START_TIMEOUT
        missing = len(children)
        while missing:
            if self.ready.acquire(timeout=0.1):
                missing -= 1
                continue
            dead = [c for c in children if c.exitcode is not None]
            if dead:
                raise WorkerFailed(
                    f"an optimisation worker ended with status {dead[0].exitcode} before it "
                    "started (its error is printed above)"
                )
            if time.monotonic() > deadline:  # pragma: no cover - a machine too slow to spawn
                raise WorkerFailed(f"optimisation workers did not start in {_START_TIMEOUT} s")
        self.go.set()


@contextmanager
def spawned_workers(
    count: int,
    storage: str | None,
    study_name: str,
    objective: TrialObjective,
    n_trials: int,
    method: Method,
    seed: int,
    grid_points: int,
) -> Iterator[None]:
    """`count` spawned processes joining the study (`join_study`; `storage` already through
    `study_storage`) while the body runs this process's trials. The body starts once they
    all did (WorkerFailed when one could not); when it ends, however it ends, they stop after
    their running trial and are joined."""
    # "spawn": forking a process that holds database connections and numba state is unsafe.
    context = multiprocessing.get_context("spawn")
    start = _StartLine(context.Semaphore(0), context.Event())
    stop = context.Event()
    children = [
        context.Process(
            target=join_study,
            # A grid sampler's seed shuffles the grid, and a grid point's id is its place in
            # that order: workers sharing a grid must shuffle it alike, or a point one worker
            # marks done is another's free point (and some points are never tried).
            args=(
                storage,
                study_name,
                objective,
                n_trials,
                method,
                seed if method == "grid" else seed + i,
                grid_points,
                start,
                stop,
            ),
            kwargs={"resolved": True},
            daemon=True,
        )
        for i in range(1, count + 1)
    ]
    for child in children:
        child.start()
    try:
        if children:
            start.wait_for(children)
        yield
    finally:
        # Cancelled (or failed) here: the other workers stop after their running trial, and
        # those still waiting at the start line are let go to see it.
        stop.set()
        start.go.set()
        for child in children:
            child.join()


def join_study(
    storage: str,
    study_name: str,
    objective: TrialObjective,
    n_trials: int,
    method: Method,
    seed: int,
    grid_points: int,
    start: Any = None,
    stop: Any = None,
    *,
    resolved: bool = False,
) -> None:
    """Work on a shared study until it holds `n_trials` completed trials (worker entry point;
    another machine calls it with the same storage and study name). `start` (a barrier) lines
    the workers up so they really share the work; `stop` (an event) ends after the running
    trial. `resolved`: `storage` already went through `study_storage` (spawned workers)."""
    if start is not None:
        # A spawned worker leaves Ctrl-C to its parent, which ends it through `stop`.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(
        study_name,
        storage if resolved else study_storage(storage),
        strategy=objective.strategy,
        space=objective.space,
        method=method,
        seed=seed,
        grid_points=grid_points,
    )
    if start is not None:
        start.arrive()
    if stop is not None and stop.is_set():
        return  # the parent gave up (another worker could not start) or is done already
    run_trials(study, objective, n_trials, None, stop)


__all__ = ["WorkerFailed", "auto_workers", "default_workers", "join_study", "spawned_workers"]
