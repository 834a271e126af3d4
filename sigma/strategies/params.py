"""Strategy parameters: a default, bounds and an optimiser step, declared on the class."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Param:
    """A tunable strategy parameter.

    Declared as a class attribute (`fast = Param(10, low=2, high=100)`); the instance attribute
    then holds the value. `low`/`high` are inclusive bounds used for validation and by the
    optimiser, `step` is the optimiser's grid step (int params default to 1).
    """

    default: int | float | Decimal | bool | str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    doc: str = ""

    @property
    def kind(self) -> type:
        """The Python type of the parameter, taken from its default."""
        return type(self.default)

    def coerce(self, name: str, value: Any) -> Any:
        """Convert `value` (possibly a CLI string) to this parameter's type and check bounds."""
        kind = self.kind
        try:
            if kind is bool:
                converted: Any = (
                    value
                    if isinstance(value, bool)
                    else str(value).strip().lower() in ("1", "true", "yes", "on")
                )
            elif kind is int:
                as_float = float(value)
                if not as_float.is_integer():
                    raise ValueError
                converted = int(as_float)
            elif kind is Decimal:
                converted = Decimal(str(value))
            else:
                converted = kind(value)
        except (TypeError, ValueError, ArithmeticError):
            raise ValueError(
                f"parameter {name!r} must be {kind.__name__}, got {value!r}"
            ) from None
        if isinstance(converted, int | float | Decimal) and not isinstance(converted, bool):
            if self.low is not None and converted < self.low:
                raise ValueError(f"parameter {name!r}={converted} is below its minimum {self.low}")
            if self.high is not None and converted > self.high:
                raise ValueError(f"parameter {name!r}={converted} is above its maximum {self.high}")
        return converted
