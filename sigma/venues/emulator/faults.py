"""Faults the local exchange can inject, set per run and switched by tests while it runs.

Counters (``error_5xx``, ``rate_limit_storm``, ``drop_after_accept``) apply to the next N
requests of their kind and count down; flags (``stale_streams``) and amounts (``latency_ms``,
``clock_skew_ms``) hold until changed. ``disconnect_streams`` is an action, not a setting: the
server closes every WebSocket connection once (see :meth:`VenueServer.disconnect_streams`).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["Faults"]


@dataclass
class Faults:
    """The faults in force. Change them with :meth:`update` (the admin route does)."""

    #: added to every REST reply and every WebSocket message sent
    latency_ms: float = 0.0
    #: the next N REST requests answer 503 with the venue's "internal error" body
    error_5xx: int = 0
    #: the next N REST requests answer 429 whatever their weight
    rate_limit_storm: int = 0
    #: the next N new orders are accepted and booked, then the connection is closed unanswered
    drop_after_accept: int = 0
    #: market data streams stop sending (their connections stay open)
    stale_streams: bool = False
    #: the venue's clock runs this far ahead of the wall clock (negative: behind)
    clock_skew_ms: int = 0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field name -> value); ValueError names an unknown or bad field."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            spec = known.get(name)
            if spec is None:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            kind = type(getattr(self, name))
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, int | float):
                raise ValueError(f"fault {name!r} takes a {kind.__name__}, got {value!r}")
            if kind is int and not float(value).is_integer():
                raise ValueError(f"fault {name!r} takes a whole number, got {value!r}")
            if kind is not bool and value < 0 and name != "clock_skew_ms":
                raise ValueError(f"fault {name!r} must be >= 0, got {value!r}")
            setattr(self, name, kind(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def take(self, name: str) -> bool:
        """True (and one fewer left) when a counted fault ``name`` is due for this request."""
        left = getattr(self, name)
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False

    async def delay(self) -> None:
        """Wait the added latency, if any."""
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
