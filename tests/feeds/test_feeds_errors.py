from __future__ import annotations

import numpy as np
import pytest

from sigma.feeds.errors import DataError, RowNumbers


def test_message_names_source_line_and_reason() -> None:
    err = DataError("data/x.csv", "high (9.5) < low (10.0)", line=7, column="high")
    assert str(err) == "data/x.csv line 7: high (9.5) < low (10.0)"
    assert (err.source, err.line, err.row, err.column) == ("data/x.csv", 7, None, "high")
    assert isinstance(err, ValueError)


def test_message_with_row_or_without_location() -> None:
    assert str(DataError("pg:bars", "close is NaN", row=3)) == "pg:bars row 3: close is NaN"
    assert str(DataError("f.parquet", "file is empty")) == "f.parquet: file is empty"


def test_line_and_row_together_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="either line or row"):
        DataError("s", "r", line=1, row=1)


def test_row_numbers_follow_filtering() -> None:
    lines = RowNumbers("line", np.array([2, 3, 5, 6], dtype=np.int64))
    kept = lines.take(np.array([False, True, False, True]))
    err = kept.error("x.csv", 1, "close is NaN", column="close")
    assert str(err) == "x.csv line 6: close is NaN"
    rows = RowNumbers.rows(3)
    assert rows.error("x.pq", 2, "bad").row == 3
