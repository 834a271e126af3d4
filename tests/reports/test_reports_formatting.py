"""Display formatting and JSON-safe conversion of report values."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum

import numpy as np
import pytest

from sigma.reports.formatting import (
    MISSING,
    format_float,
    format_timedelta,
    format_timestamp,
    format_value,
    to_jsonable,
)


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("x", None, MISSING),
        ("x", True, "yes"),
        ("x", False, "no"),
        ("x", Decimal("1234.5600"), "1,234.5600"),
        ("x_pct", Decimal("12.3456"), "12.35 %"),
        ("x", Decimal("NaN"), MISSING),
        ("x", Decimal("Infinity"), "∞"),
        ("x", 1234567, "1,234,567"),
        ("x_pct", 5, "5 %"),
        ("x", 1234.5678, "1,234.57"),
        ("x", 0.1234567, "0.1235"),
        ("x", 2.0, "2"),
        ("x", -0.00001, "0"),
        ("x_pct", 12.3456, "12.35 %"),
        ("x", float("nan"), MISSING),
        ("x", float("-inf"), "-∞"),
        ("x", np.float32(1.5), "1.5"),
        ("x", np.int64(7), "7"),
        ("x", timedelta(hours=1, seconds=2), "01:00:02"),
        ("x", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02 03:04:05 UTC"),
        ("x", Colour.RED, "red"),
        ("x", "<b>", "<b>"),
        ("x", [1, 2], "[1, 2]"),
    ],
)
def test_format_value(key: str, value: object, expected: str) -> None:
    assert format_value(key, value) == expected


def test_format_helpers() -> None:
    assert format_float(-0.001, pct=True) == "0.00 %"
    assert format_timedelta(timedelta(days=-1, hours=22)) == "-02:00:00"
    assert format_timedelta(-timedelta(days=2, seconds=1)) == "-2d 00:00:01"
    assert format_timestamp(datetime(2024, 1, 1, 12)) == "2024-01-01 12:00:00"
    assert format_timestamp(np.datetime64("2024-01-01T00:00:00")) == "2024-01-01 00:00:00"


def test_to_jsonable_is_strict_json_and_exact() -> None:
    data = {
        "d": Decimal("0.10"),
        "nan_d": Decimal("NaN"),
        "f": float("nan"),
        "inf": float("inf"),
        "ok": 1.5,
        "np": np.float64(2.5),
        "ts": datetime(2024, 1, 1, 1, tzinfo=UTC),
        "naive": datetime(2024, 1, 1),
        "np_ts": np.datetime64("2024-01-01T00:00:00"),
        "np_td": np.timedelta64(90, "s"),
        "day": date(2024, 1, 1),
        "td": timedelta(days=1, seconds=5),
        "enum": Colour.RED,
        "nested": [(1, None, "s", True)],
        "arr": np.array([1.0, np.nan]),
        "obj": object,
        3: "int key",
    }
    out = to_jsonable(data)
    json.dumps(out, allow_nan=False)
    assert out["d"] == "0.10" and out["nan_d"] is None
    assert out["f"] is None and out["inf"] is None and out["ok"] == 1.5 and out["np"] == 2.5
    assert out["ts"] == "2024-01-01T01:00:00+00:00"
    assert out["naive"] == "2024-01-01T00:00:00+00:00"
    assert out["np_ts"] == "2024-01-01T00:00:00+00:00"
    assert out["np_td"] == "P0DT0H1M30S"
    assert out["day"] == "2024-01-01"
    assert out["td"] == "P1DT0H0M5S"
    assert out["enum"] == "red"
    assert out["nested"] == [[1, None, "s", True]]
    assert out["arr"] == [1.0, None]
    assert out["obj"] == str(object)
    assert out["3"] == "int key"
