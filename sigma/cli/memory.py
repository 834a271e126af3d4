"""Giving the memory a finished step freed back to the operating system, between the steps of
one `sigma backtest`.

glibc's allocator keeps what Python and numpy free inside its heap for later allocations, and
after a large block is freed it serves blocks up to that size from the heap too (its mmap
threshold rises). Reading a million-bar CSV frees a raw table as large as the bar frame and
the parser's buffers, and ~25 MB of that stayed in the process (9 MB at 100k bars) under the
engine's run, which is the command's peak. `malloc_trim` returns the free pages; it costs
about a millisecond. Elsewhere than on glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on, already loaded
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc only
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def give_back_freed_memory() -> None:
    """Return the free pages of the C heap to the operating system (glibc), else nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
