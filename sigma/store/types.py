"""Column types that behave the same on SQLite and PostgreSQL: exact Decimal, UTC time, JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from sigma.domain.money import utc
from sigma.store.amounts import PRECISION, SCALE, quantize

__all__ = ["PRECISION", "SCALE", "ExactDecimal", "JsonDoc", "UTCDateTime", "quantize", "utcnow"]

# Sign, 18 integer digits, the point and 10 decimals fit in 30; the rest is headroom.
_SQLITE_DECIMAL_LENGTH = 40

# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere.
JsonDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (column default)."""
    return datetime.now(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(28, 10) that returns the same Decimal on every database.

    SQLite has no exact numeric storage (NUMERIC affinity turns text into REAL), so there the
    value is stored as fixed-point text. Both dialects quantize to 10 decimals on write, so a
    value reads back identical (`Decimal('1.5')` reads back as `Decimal('1.5000000000')`,
    which compares equal). On SQLite, SQL comparisons on these columns are textual: equality
    works, ordering does not.
    """

    impl = Numeric(PRECISION, SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Text on SQLite, NUMERIC elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_SQLITE_DECIMAL_LENGTH))
        return dialect.type_descriptor(Numeric(PRECISION, SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Quantize; on SQLite render as plain fixed-point text (never exponent notation)."""
        if value is None:
            return None
        number = quantize(value)
        return format(number, "f") if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Decimal, never float."""
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))

    @property
    def python_type(self) -> type[Decimal]:
        """Values are Decimal."""
        return Decimal


class UTCDateTime(TypeDecorator[datetime]):
    """TIMESTAMP WITH TIME ZONE that always reads back as an aware UTC datetime.

    SQLite keeps no offset, so values are converted to UTC and stored naive; reading attaches
    UTC again. A naive value written is taken to be UTC already, as in `sigma.domain.utc`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; drop the offset where the database cannot keep it."""
        if value is None:
            return None
        aware = utc(value)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware UTC, whatever the session time zone of the connection."""
        if value is None:
            return None
        return utc(value)

    @property
    def python_type(self) -> type[datetime]:
        """Values are datetime."""
        return datetime
