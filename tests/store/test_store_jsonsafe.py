"""JSON-safe conversion of statistics and parameters (no database needed)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum

import numpy as np
import pandas as pd
import pytest

from sigma.store.jsonsafe import to_jsonable


class Colour(Enum):
    RED = "red"


def test_every_stat_type_becomes_plain_json() -> None:
    stats = {
        "d": Decimal("1.10"),
        "nan_d": Decimal("NaN"),
        "f": 0.5,
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "np_f": np.float32(0.25),
        "np_i": np.int64(7),
        "np_b": np.bool_(True),
        "b": False,
        "none": None,
        "nat": pd.NaT,
        "ts": pd.Timestamp("2024-01-01", tz="UTC"),
        "dt": datetime(2024, 1, 1, tzinfo=UTC),
        "day": date(2024, 1, 2),
        "td": timedelta(hours=1),
        "ptd": pd.Timedelta(minutes=3),
        "enum": Colour.RED,
        "nested": {1: [Decimal("2"), (3, np.array([1.5, np.nan]))]},
    }
    out = to_jsonable(stats)
    assert out == {
        "d": "1.10",
        "nan_d": None,
        "f": 0.5,
        "nan": None,
        "inf": None,
        "np_f": 0.25,
        "np_i": 7,
        "np_b": True,
        "b": False,
        "none": None,
        "nat": None,
        "ts": "2024-01-01T00:00:00+00:00",
        "dt": "2024-01-01T00:00:00+00:00",
        "day": "2024-01-02",
        "td": "1:00:00",
        "ptd": "0 days 00:03:00",
        "enum": "red",
        "nested": {"1": ["2", [3, [1.5, None]]]},
    }
    json.dumps(out, allow_nan=False)


def test_unknown_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": object()})
