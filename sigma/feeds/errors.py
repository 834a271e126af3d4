"""The one error type for bad market data, and the mapping from frame rows back to the source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from sigma.domain.text import clip

MAX_REASON_CHARS = 300
"""Longest reason a DataError shows: a value quoted from a file can be megabytes long."""


class DataError(ValueError):
    """Market data that cannot be used, with where it came from.

    The message reads ``"<source> line 7: high (9.5) < low (10.0)"``: the source (a file path or
    ``pg:table``), then where in it (CSV: ``line N`` counting the header as line 1; other sources:
    ``row N``, 1-based data rows), then the reason (cut to `MAX_REASON_CHARS`: it may quote a
    value from the file). The parts are also kept as attributes so callers
    (CLI, API) can present them however they like.
    """

    def __init__(
        self,
        source: str,
        reason: str,
        *,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        if line is not None and row is not None:
            raise ValueError("give either line or row, not both")
        reason = clip(reason, MAX_REASON_CHARS)
        self.source = source
        self.reason = reason
        self.line = line
        self.row = row
        self.column = column
        where = source
        if line is not None:
            where = f"{source} line {line}"
        elif row is not None:
            where = f"{source} row {row}"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class RowNumbers:
    """What a human calls each row of a loaded frame: CSV ``line`` numbers or 1-based ``row``\\s.

    Loaders drop rows (other symbols, blank lines, the start/end window) before validating, so
    positions in the frame no longer match the file; this keeps the original numbers alongside.
    """

    kind: Literal["line", "row"]
    numbers: npt.NDArray[np.int64]

    @classmethod
    def rows(cls, count: int) -> RowNumbers:
        """Rows ``1..count``: the frame is exactly what the source holds, in order."""
        return cls("row", np.arange(1, count + 1, dtype=np.int64))

    def take(self, keep: npt.NDArray[np.bool_]) -> RowNumbers:
        """The numbers of the rows a boolean mask keeps."""
        return RowNumbers(self.kind, self.numbers[keep])

    def error(
        self, source: str, position: int, reason: str, column: str | None = None
    ) -> DataError:
        """A DataError located at frame position ``position`` (0-based)."""
        number = int(self.numbers[position])
        if self.kind == "line":
            return DataError(source, reason, line=number, column=column)
        return DataError(source, reason, row=number, column=column)
