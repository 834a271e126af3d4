"""Turning run statistics and parameters into values every JSON column accepts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(value: Any) -> Any:
    """A copy of `value` made of dict/list/str/int/float/bool/None only.

    Decimal becomes its exact string; NaN and infinities become None (JSON has no such numbers
    and PostgreSQL's JSONB rejects them); times become ISO-8601 text, durations `str(td)`;
    numpy scalars and arrays become Python numbers and lists. Anything else is an error, so a
    silently lossy `str(obj)` never reaches the database.
    """
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, pd.Timestamp | datetime | date | time):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | timedelta):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")
