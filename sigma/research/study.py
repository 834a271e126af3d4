"""The optuna study a search runs in: where it is stored, and how it is created or loaded
with its sampler and first trial.

A study lives in memory (one process), in an optuna journal file (``journal:PATH``: the
processes of one machine, or a temporary file, `temporary_journal`) or in a database (any
SQLAlchemy URL; SIGMA's own database gives the studies a schema of their own,
`study_storage`). The store is imported only for a database: the spawned workers of a
journal file's study never load it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from sigma.research.space import Dimension, default_params
from sigma.strategies.base import Strategy

Method = Literal["tpe", "grid"]

JOURNAL = "journal:"
"""Prefix of a `storage` that is an optuna journal file (``journal:/path/study.log``): a study
several processes of one machine share without a database."""


def study_storage(url: str) -> str:
    """The URL optuna should store studies at, given the configured one: a ``journal:`` file as
    it is, a database URL as `sigma.store.optuna_storage.optuna_url` makes it (never SIGMA's
    own schema: optuna's migrations would clash with SIGMA's)."""
    if url.startswith(JOURNAL):
        return url
    # Imported here: spawned optimisation workers need neither Alembic nor the store.
    from sigma.store.optuna_storage import optuna_url

    return optuna_url(url)


def _memory_dir() -> str | None:
    """/dev/shm when there is one: the journal syncs each write, which is free in memory and
    costs more than a fast backtest on a disk. None: the default temporary directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


@contextmanager
def temporary_journal() -> Iterator[str]:
    """The `storage` of a journal file nobody else sees, removed at the end: how the processes
    of one search share its study without a database."""
    with tempfile.TemporaryDirectory(prefix="sigma-optuna-", dir=_memory_dir()) as tmp:
        yield f"{JOURNAL}{os.path.join(tmp, 'study.log')}"


def _open_storage(storage: str | None) -> str | optuna.storages.BaseStorage | None:
    """What optuna takes for `storage`: a journal file's storage, or the URL as it is."""
    if storage is None or not storage.startswith(JOURNAL):
        return storage
    path = storage.removeprefix(JOURNAL)
    return JournalStorage(JournalFileBackend(path))


def _schema_lock(storage: str | None) -> AbstractContextManager[None]:
    """One process at a time creates optuna's tables or a study in a database
    (`sigma.store.optuna_storage.creation_lock`); a journal file needs no lock."""
    if storage is None or storage.startswith(JOURNAL):
        return nullcontext()
    # Imported here too: the workers of a journal file's study never load the store.
    from sigma.store.optuna_storage import creation_lock

    return creation_lock(storage)


def _sampler(
    method: Method,
    space: Mapping[str, Dimension],
    defaults: Mapping[str, Any],
    seed: int,
    grid_points: int,
) -> optuna.samplers.BaseSampler:
    if method == "grid":
        grid = {n: d.grid(grid_points, defaults[n]) for n, d in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown method {method!r}; use 'tpe' or 'grid'")


def _first_trial(
    method: Method, space: Mapping[str, Dimension], defaults: Mapping[str, Any]
) -> dict[str, Any] | None:
    """TPE starts from the defaults (those inside the searched ranges): the best found is
    then never worse than them. The grid holds the defaults already."""
    if method != "tpe":
        return None
    return {k: defaults[k] for k, d in space.items() if d.contains(defaults[k])}


def load_study(
    name: str,
    storage: str | None,
    *,
    strategy: type[Strategy],
    space: Mapping[str, Dimension],
    method: Method,
    seed: int,
    grid_points: int,
) -> optuna.Study:
    """Create or load the study `name` in `storage` (None: in memory; a URL already through
    `study_storage`), searching `space` of `strategy` by `method` (a grid: `grid_points` per
    range). A new TPE study gets the defaults as its first trial, enqueued under the lock, so
    processes starting together do not each enqueue it."""
    defaults = default_params(strategy)
    sampler = _sampler(method, space, defaults, seed, grid_points)
    first = _first_trial(method, space, defaults)
    with _schema_lock(storage):
        study = optuna.create_study(
            study_name=name,
            storage=_open_storage(storage),
            sampler=sampler,
            direction="maximize",
            load_if_exists=True,
        )
        if first is not None and not study.trials:
            study.enqueue_trial(dict(first))
    return study


__all__ = ["JOURNAL", "Method", "load_study", "study_storage", "temporary_journal"]
