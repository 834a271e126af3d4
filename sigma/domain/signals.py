"""What a strategy wants, before risk and sizing turn it into orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class SignalAction(StrEnum):
    """Target exposure a strategy asks for."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's decision on one bar."""

    strategy: str
    symbol: str
    ts: datetime
    action: SignalAction
    strength: Decimal = Decimal(1)
    reason: str = ""
