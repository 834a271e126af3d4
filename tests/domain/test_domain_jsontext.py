from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum

from sigma.domain.jsontext import dumps, to_jsonable


class Mode(Enum):
    PAPER = "paper"


def test_dumps_never_fails_and_keeps_decimals_exact() -> None:
    value = {
        "price": Decimal("0.1000000001"),
        "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(2024, 1, 2),
        "mode": Mode.PAPER,
        "tags": {"b", "a"},
        "obj": object,
    }
    assert dumps(value) == (
        '{"at":"2024-01-02T03:04:05+00:00","day":"2024-01-02","mode":"paper",'
        '"obj":"<class \'object\'>","price":"0.1000000001","tags":["a","b"]}'
    )
    assert to_jsonable({"q": Decimal("2"), "n": [1, None]}) == {"q": "2", "n": [1, None]}
