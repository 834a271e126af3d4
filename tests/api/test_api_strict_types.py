"""Request bodies take booleans and whole numbers only as JSON booleans and numbers, and
amounts only in ASCII digits: pydantic's lax mode read "yes" as true, "5" as 5, 5.0 as 5 and
"١" (an Arabic-Indic one) as 1."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi import HTTPException
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from sigma.api.routers import ROUTERS
from sigma.api.routers.strategies import checked_params
from sigma.bootstrap import App
from sigma.store.control import KILL_SWITCH, get_flag
from sigma.strategies import Param, Strategy

Headers = Callable[[str], dict[str, str]]
RUN = {"strategy": "sma_cross", "symbol": "BTC"}
SMA = "/api/params/sma_cross/BTC"


@pytest.mark.parametrize(
    ("method", "path", "role", "body", "detail"),
    [
        ("PUT", "/api/risk/kill-switch", "admin", {"enabled": "yes", "reason": "x"}, "enabled"),
        ("PUT", "/api/risk/kill-switch", "admin", {"enabled": "true", "reason": "x"}, "enabled"),
        ("PUT", "/api/risk/kill-switch", "admin", {"enabled": 1, "reason": "x"}, "enabled"),
        ("PUT", "/api/controls/sma_cross/BTC/enabled", "trader", {"on": "on"}, "on"),
        ("PUT", "/api/controls/sma_cross/BTC/pinned", "trader", {"on": "0"}, "on"),
        ("PATCH", "/api/users/viewer", "admin", {"active": "no"}, "active"),
        ("POST", "/api/backtests", "trader", {**RUN, "bars": "60"}, "bars"),
        ("POST", "/api/backtests", "trader", {**RUN, "bars": 60.0}, "bars"),
        ("POST", "/api/backtests/jobs", "trader", {**RUN, "seed": True}, "seed"),
        ("POST", "/api/sim/runs/1/rating", "trader", {"rating": "5"}, "rating"),
        ("POST", "/api/controls/sma_cross/BTC/entry", "trader", {"qty": "\u0661"}, "qty"),
        ("POST", "/api/controls/sma_cross/BTC/entry", "trader", {"qty": " 1 "}, "qty"),
        ("POST", "/api/controls/sma_cross/BTC/entry", "trader", {"qty": "Infinity"}, "qty"),
        ("POST", "/api/backtests", "trader", {**RUN, "cash": "1_000"}, "cash"),
    ],
)  # fmt: skip
def test_a_coercible_value_is_422_naming_its_field_and_changes_nothing(
    client: TestClient,
    auth: Headers,
    sigma_app: App,
    method: str,
    path: str,
    role: str,
    body: dict[str, Any],
    detail: str,
) -> None:
    response = client.request(method, path, json=body, headers=auth(role))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"body.{detail}: "), response.text
    with sigma_app.sessions() as session:
        assert get_flag(session, KILL_SWITCH).enabled is False
    assert client.get("/api/users", headers=auth("admin")).json()[2]["active"] is True


@pytest.mark.parametrize(
    ("method", "path", "params", "detail"),
    [
        ("PUT", SMA, {"allow_short": "yes"}, "'allow_short' must be true or false, got 'yes'"),
        ("PUT", SMA, {"allow_short": 0}, "'allow_short' must be true or false, got 0"),
        ("PUT", SMA, {"fast": "7"}, "'fast' must be a whole number, got '7'"),
        ("PUT", SMA, {"fast": 7.0}, "'fast' must be a whole number, got 7.0"),
        ("POST", "/api/backtests", {"k": "2.5"}, "'k' must be a number, got '2.5'"),
        ("POST", "/api/backtests", {"k": False}, "'k' must be a number, got False"),
    ],
)  # fmt: skip
def test_strategy_parameters_take_their_json_type_only(
    client: TestClient,
    auth: Headers,
    method: str,
    path: str,
    params: dict[str, Any],
    detail: str,
) -> None:
    # The command line's text forms ("yes", "7") are Param.coerce's; a JSON client sends values.
    strategy = "sma_cross" if "fast" in params or "allow_short" in params else "bollinger_breakout"
    body: dict[str, Any] = {"params": params, "reason": "x"}
    if method == "POST":
        body = {"strategy": strategy, "symbol": "BTC", "bars": 60, "params": params}
    response = client.request(method, path, json=body, headers=auth("trader"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"body.params.{next(iter(params))}: parameter {detail}"


def test_strategy_parameters_in_their_json_types_pass(client: TestClient, auth: Headers) -> None:
    body = {"params": {"fast": 7, "allow_short": False}, "reason": "x"}
    changed = client.put(SMA, json=body, headers=auth("trader"))
    assert changed.status_code == 200, changed.text
    assert changed.json()["params"] == {"fast": 7, "slow": 20, "allow_short": False}
    # A whole number is a number: a float parameter takes it.
    run = {"strategy": "bollinger_breakout", "symbol": "BTC", "bars": 60, "params": {"k": 2}}
    created = client.post("/api/backtests", json=run, headers=auth("trader"))
    assert created.status_code == 201, created.text


class Sized(Strategy):
    """Holds a Decimal parameter (no built-in strategy has one)."""

    name = "sized"
    size = Param(Decimal("0.5"), low=0, high=10)

    def init(self) -> None:
        pass

    def on_bar(self) -> None:
        pass


@pytest.mark.parametrize(
    ("value", "refused"),
    [("0.25", False), (0.25, False), (1, False), ("\u0661", True), (" 1", True), (True, True)],
)
def test_a_decimal_parameter_takes_numbers_and_ascii_decimal_text(
    value: object, refused: bool
) -> None:
    if refused:
        with pytest.raises(HTTPException) as error:
            checked_params(Sized, {"size": value}, "body.params")
        assert error.value.status_code == 422
        assert str(error.value.detail).startswith(
            "body.params.size: parameter 'size' must be a number"
        )
    else:
        assert checked_params(Sized, {"size": value}, "body.params")["size"] == Decimal(str(value))


def test_amounts_still_take_plain_strings_and_numbers(client: TestClient, auth: Headers) -> None:
    for cash in ("2500.5", 2500.5, 2500, "2.5e3", ".5"):
        body = {**RUN, "bars": 60, "cash": cash}
        created = client.post("/api/backtests", json=body, headers=auth("trader"))
        assert created.status_code == 201, (cash, created.text)
        assert created.json()["initial_cash"] in {"2500.5", "2500", "0.5"}, cash


def _body_models() -> Iterator[type[BaseModel]]:
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute) and route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield annotation


def _kinds(annotation: Any) -> set[type]:
    """The plain types a field's annotation names (through Optional, Annotated)."""
    args = typing.get_args(annotation)
    if not args:
        return {annotation} if isinstance(annotation, type) else set()
    return set().union(*(_kinds(arg) for arg in args))


def test_every_boolean_whole_number_and_amount_of_every_body_is_strict() -> None:
    # The guard for bodies to come: each bool or int field refuses its text form, each
    # amount a number in other digits than ASCII.
    checked = []
    for model in set(_body_models()):
        for name, field in model.model_fields.items():
            kinds = _kinds(field.annotation)
            for kind, text in ((bool, "true"), (int, "1"), (Decimal, "\u0661")):
                if kind not in kinds or str in kinds:
                    continue
                with pytest.raises(ValidationError) as refused:
                    model.model_validate({name: text})
                assert any(e["loc"][:1] == (name,) for e in refused.value.errors()), (model, name)
                checked.append(f"{model.__name__}.{name}")
    expected = {"KillSwitchIn.enabled", "SwitchIn.on", "BacktestIn.bars", "OrderIn.qty"}
    assert expected <= set(checked)
