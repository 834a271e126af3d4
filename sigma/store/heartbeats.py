"""Worker heartbeats in the database: every order worker, in whatever process or machine,
beats into `worker_heartbeats`, so one health check sees them all.

A worker's name is its row: a worker restarted under the same name (systemd's
`sigma-worker@N` sets `SIGMA_WORKER_NAME=worker-N`) takes its row over, so a crashed worker
that comes back clears its own alarm. A worker that stops in order removes its row: it is
gone on purpose, not silent.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sigma.store.models import WorkerHeartbeat
from sigma.store.types import utcnow


def default_worker_name() -> str:
    """The name of a worker that was given none: one per host."""
    return f"{socket.gethostname()}:worker"


@dataclass(frozen=True, slots=True)
class Beat:
    """A worker's last sign of life."""

    name: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime


def beat(session: Session, name: str, *, now: datetime | None = None) -> None:
    """Record that worker `name` (this process) is alive (the caller commits)."""
    now = now or utcnow()
    row = session.get(WorkerHeartbeat, name)
    host, pid = socket.gethostname(), os.getpid()
    if row is None or (row.host, row.pid) != (host, pid):
        # A new worker under this name (or the same name after a restart): it starts now.
        if row is None:
            row = WorkerHeartbeat(name=name)
            session.add(row)
        row.host, row.pid, row.started_at = host, pid, now
    row.beat_at = now
    session.flush()


def forget(session: Session, name: str) -> None:
    """Remove the row of worker `name` after it stopped in order (the caller commits)."""
    session.execute(
        delete(WorkerHeartbeat).where(
            WorkerHeartbeat.name == name,
            WorkerHeartbeat.host == socket.gethostname(),
            WorkerHeartbeat.pid == os.getpid(),
        )
    )


def beats(session: Session) -> list[Beat]:
    """Every worker's last beat, by name."""
    rows = session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.name))
    return [Beat(r.name, r.host, r.pid, r.started_at, r.beat_at) for r in rows]
