"""JSON text for logs, alerts and audit rows: never fails on a value.

Operational output must not break because a detail is a Decimal, a datetime or some object
without a JSON form, so unknown objects become their `str`.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact; a float would round prices
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON accepting Decimal, datetime, Enum and sets; `str` otherwise."""
    return json.dumps(value, default=_default, separators=(",", ":"), sort_keys=True)


def to_jsonable(value: Any) -> Any:
    """`value` as plain JSON types (for JSON columns), converted the way `dumps` does."""
    return json.loads(dumps(value))
