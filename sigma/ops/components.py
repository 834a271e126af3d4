"""What the supervisor says of each long-running component, for `/api/health` and the
dashboard (the API reads it without depending on the runtime that supervises)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ComponentState = Literal["running", "restarting", "down"]
"""running: up, and has been for a healthy period (or never died); down: it died and waits
out the backoff before it is started again; restarting: started again after a death, not yet
up for a healthy period (another death now waits longer)."""


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """One supervised component: its state since when, how often it was restarted, and the
    error of its last death."""

    name: str
    state: ComponentState
    since: datetime
    restarts: int = 0
    last_error: str | None = None

    @property
    def up(self) -> bool:
        """False while the component is down."""
        return self.state != "down"


ComponentBoard = Callable[[], Sequence[ComponentStatus]]
"""The current status of every supervised component of the process."""
