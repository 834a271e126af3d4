"""The async database reader the API holds (`ApiContext.reader`), under the name it had
before it moved to the store (`sigma.store.reader`), for code that imports it from here."""

from sigma.store.reader import (
    COMPILED_CACHE,
    POOL_SIZE,
    SQLITE_THREADS,
    Reader,
    Rows,
    _Pool,
    refused_value_errors,
)

__all__ = [
    "COMPILED_CACHE",
    "POOL_SIZE",
    "SQLITE_THREADS",
    "Reader",
    "Rows",
    "_Pool",
    "refused_value_errors",
]
