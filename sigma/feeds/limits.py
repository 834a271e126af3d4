"""How much an input file may hold: limits checked before and while a history file is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sigma.feeds.errors import DataError

if TYPE_CHECKING:
    from sigma.config import Settings

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class InputLimits:
    """Largest history file a loader reads (`max_file_bytes`, its size on disk) and largest it
    lets a compressed file grow to (`max_uncompressed_bytes`, counted while decompressing, so a
    small "zip bomb" is refused before it fills the memory). The settings
    ``SIGMA_DATA_MAX_FILE_BYTES`` and ``SIGMA_DATA_MAX_UNCOMPRESSED_BYTES`` set them for the
    commands."""

    max_file_bytes: int = 2 * GIB
    max_uncompressed_bytes: int = 2 * GIB

    def __post_init__(self) -> None:
        if self.max_file_bytes < 1 or self.max_uncompressed_bytes < 1:
            raise ValueError(f"input limits must be positive, got {self}")

    def check_file(self, size: int, source: str) -> None:
        """Refuse a file of `size` bytes on disk over `max_file_bytes`."""
        if size > self.max_file_bytes:
            raise DataError(
                source,
                f"the file holds {show_bytes(size)}, over the limit of "
                f"{show_bytes(self.max_file_bytes)} (SIGMA_DATA_MAX_FILE_BYTES)",
            )

    def check_uncompressed(self, size: int, source: str) -> None:
        """Refuse data that decompresses to more than `max_uncompressed_bytes` (`size` is
        what it reached so far, or what its metadata announces)."""
        if size > self.max_uncompressed_bytes:
            raise DataError(
                source,
                f"decompressed, the file holds more than {show_bytes(self.max_uncompressed_bytes)}"
                " (the limit, SIGMA_DATA_MAX_UNCOMPRESSED_BYTES)",
            )


def show_bytes(count: int) -> str:
    """A byte count for a message: ``2.0 GiB``, ``1.5 MiB``, ``512 bytes``."""
    for unit, size in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def limits_of(settings: Settings) -> InputLimits:
    """The limits the settings ``data_max_file_bytes`` / ``data_max_uncompressed_bytes`` set."""
    return InputLimits(settings.data.data_max_file_bytes, settings.data.data_max_uncompressed_bytes)
