"""The alert value type, severities and the renderings every channel shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args

from sigma.domain.jsontext import dumps
from sigma.store.types import utcnow

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
SUPPRESSED_DUPLICATE = "duplicate"
"""Why an alert was not delivered: a repeat of its key within the dedupe window."""
SUPPRESSED_RATE_LIMITED = "rate_limited"
"""Why an alert was not delivered: every channel that would take it was over its rate."""
_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """0 for info up to 3 for critical; raises ValueError for an unknown name."""
    try:
        return _RANK[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}") from None


def parse_severity(value: str) -> Severity:
    """`value` (any case) as a Severity; raises ValueError for an unknown name."""
    name = value.strip().lower()
    severity_rank(name)
    return cast(Severity, name)


@dataclass(frozen=True, slots=True)
class Alert:
    """Something an operator should know about.

    `dedupe_key` groups repeats of the same condition (e.g. ``"feed_stale:BTCUSDT"``): within
    the service's window only the first is delivered. `details` are extra key/values shown
    under the message.
    """

    severity: Severity
    source: str
    message: str
    dedupe_key: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    ts: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        severity_rank(self.severity)

    def to_dict(self) -> dict[str, Any]:
        """The alert as a JSON-ready dictionary (the webhook and bus payload)."""
        return {
            "severity": self.severity,
            "source": self.source,
            "message": self.message,
            "dedupe_key": self.dedupe_key,
            "details": dict(self.details),
            "ts": self.ts.isoformat(),
        }

    def to_json(self) -> str:
        """`to_dict` as compact JSON text."""
        return dumps(self.to_dict())

    @property
    def title(self) -> str:
        """One line: ``[SEVERITY] source: message``."""
        return f"[{self.severity.upper()}] {self.source}: {self.message}"

    def to_text(self) -> str:
        """The title followed by one ``key: value`` line per detail (chat and e-mail body)."""
        lines = [self.title]
        lines.extend(f"{key}: {_text_value(value)}" for key, value in sorted(self.details.items()))
        return "\n".join(lines)


def _text_value(value: Any) -> str:
    # Containers read best as JSON; scalars (Decimal prices, times) as their plain text.
    if isinstance(value, Mapping | list | tuple):
        return dumps(value)
    return str(value)
