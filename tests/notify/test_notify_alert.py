from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum

import pytest

from sigma.notify import SEVERITIES, Alert, parse_severity, severity_rank

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Side(Enum):
    BUY = "buy"


def test_severity_order_and_parsing() -> None:
    assert [severity_rank(s) for s in SEVERITIES] == [0, 1, 2, 3]
    assert parse_severity(" Critical ") == "critical"
    with pytest.raises(ValueError, match="unknown severity 'fatal'"):
        parse_severity("fatal")
    with pytest.raises(ValueError, match="unknown severity"):
        Alert("loud", "x", "y")  # type: ignore[arg-type]


def test_renderings() -> None:
    alert = Alert(
        "error",
        "risk",
        "order rejected",
        dedupe_key="k",
        details={"price": Decimal("1.50"), "at": TS, "side": Side.BUY, "tags": ["a"], "n": 2},
        ts=TS,
    )
    assert alert.title == "[ERROR] risk: order rejected"
    assert alert.to_text() == (
        "[ERROR] risk: order rejected\n"
        "at: 2024-05-01 12:00:00+00:00\n"
        "n: 2\n"
        "price: 1.50\n"
        "side: Side.BUY\n"
        'tags: ["a"]'
    )
    assert json.loads(alert.to_json()) == {
        "severity": "error",
        "source": "risk",
        "message": "order rejected",
        "dedupe_key": "k",
        "details": {
            "price": "1.50",
            "at": "2024-05-01T12:00:00+00:00",
            "side": "buy",
            "tags": ["a"],
            "n": 2,
        },
        "ts": "2024-05-01T12:00:00+00:00",
    }
    assert Alert("info", "a", "b").ts.tzinfo is not None
