"""The shape of a user's preferences (`/api/me/prefs`): any keys, of which the dashboard's own
(`backtest_defaults`, `report_prefs`) have a fixed form, so its types come from the schema."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError


class BacktestDefaults(BaseModel):
    """Starting values of the dashboard's "run a backtest" form."""

    model_config = ConfigDict(extra="allow", strict=True)

    symbol: str | None = None
    bars: int | None = None
    freq: str | None = None
    cash: str | None = None
    commission: str | None = None


class ReportPrefs(BaseModel):
    """How the dashboard's reports page starts: the kind it lists, the format it opens."""

    model_config = ConfigDict(extra="allow", strict=True)

    kind: str | None = None
    format: Literal["html", "pdf"] | None = None


class Prefs(BaseModel):
    """A user's preferences, `{key: value}`: any key the client chooses besides these."""

    model_config = ConfigDict(extra="allow", strict=True)

    backtest_defaults: BacktestDefaults | None = None
    report_prefs: ReportPrefs | None = None


def check_prefs(stored: dict[str, Any]) -> None:
    """Raise the API's 422 (at `body.<key>...`) when a key of fixed form holds something
    else: what is stored is answered as it is, so it must fit the schema that documents it."""
    try:
        Prefs.model_validate(stored)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
