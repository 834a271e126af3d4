"""Schemathesis walks every operation of the OpenAPI schema as an authenticated admin, against
the ASGI app in-process, on SQLite and on PostgreSQL, and without a token: valid requests
(shaped by the schema) and invalid ones (the schema broken on purpose) must never get a 5xx,
and every response must have a documented status and match its schema and content type.

Bounded: a fixed number of examples per operation and mode, derandomized, no example database
(one to two minutes in all); backtests are capped at a few hundred bars so a generated request
stays cheap."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.regime.news import NewsHandler
from sigma.scheduler.service import SchedulerService
from sigma.scheduler.tasks import JobSpec, TaskManager
from tests.api.conftest import issue_token

MAX_BARS = 300
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


def _capped(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every `bars` limit lowered to MAX_BARS (the server allows 200,000: a
    fuzzer would spend minutes on a few long backtests)."""
    capped = copy.deepcopy(schema)
    for component in capped["components"]["schemas"].values():
        bars = component.get("properties", {}).get("bars")
        if bars is None:
            continue
        for choice in [bars, *bars.get("anyOf", [])]:
            if "maximum" in choice:
                choice["maximum"] = MAX_BARS
    return capped


def walk(
    api: FastAPI, mode: GenerationMode, examples: int, *, admin: bool = True
) -> dict[str, str]:
    """Run `examples` generated cases of every operation, as an admin or without a token;
    the failures by operation."""
    headers = {"Authorization": f"Bearer {issue_token(api, 'admin')}"} if admin else {}
    schema = schemathesis.openapi.from_dict(_capped(api.openapi()))
    schema.app = api  # calls go to the app in-process (schemathesis runs its lifespan)
    schema.location = "/openapi.json"
    # Logging out would revoke the token every later case uses (tests/api/test_api_tokens.py
    # covers it).
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path != "/api/auth/logout"
    ]
    assert len(operations) > 40  # every route, not an empty schema

    failures: dict[str, str] = {}
    try:
        for operation in operations:

            @settings(
                max_examples=examples,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                call()
            except Unsatisfiable:  # nothing to break, e.g. a negative case of a bare GET
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, FailureGroup) as exc:  # walk them all, report every failure
                failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:3000]}"
    finally:
        shutdown_lifespans()
    return failures


def _report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


@pytest.mark.parametrize(
    ("mode", "examples"), [(GenerationMode.POSITIVE, 20), (GenerationMode.NEGATIVE, 10)]
)
def test_no_operation_answers_5xx(api: FastAPI, mode: GenerationMode, examples: int) -> None:
    """SQLite, with the scheduler and news handler of `sigma up` in the process."""
    failures = walk(api, mode, examples)
    assert not failures, _report(failures)


def test_no_operation_answers_undocumented_without_a_token(api: FastAPI) -> None:
    """Without a token every operation behind one is a documented 401, never a 5xx; the
    public ones answer as documented."""
    failures = walk(api, GenerationMode.POSITIVE, 3, admin=False)
    assert not failures, _report(failures)


@pytest.fixture
def pg_api(pg_app: App) -> Iterator[FastAPI]:
    """The API on PostgreSQL, with a (paused) scheduler of its own like `sigma up`'s."""
    manager = TaskManager(pg_app.sessions)
    manager.register(JobSpec("hourly", lambda ctx: 1, IntervalTrigger(hours=1), "every hour"))
    service = SchedulerService(pg_app.db, manager, timezone="UTC")
    service.start(paused=True)
    service.sync(manager.specs.values())
    try:
        yield create_api(
            api_deps(pg_app),
            InMemoryPubSub(),
            static_dir=None,
            news=NewsHandler(),
            scheduler=service,
        )
    finally:
        service.shutdown(wait=False)


@pytest.mark.pg
@pytest.mark.parametrize(
    ("mode", "examples"), [(GenerationMode.POSITIVE, 8), (GenerationMode.NEGATIVE, 6)]
)
def test_no_operation_answers_5xx_on_postgres(
    pg_api: FastAPI, mode: GenerationMode, examples: int
) -> None:
    """PostgreSQL refuses what SQLite takes (NUL characters, out-of-range numbers, over-long
    strings): those must be client errors too."""
    failures = walk(pg_api, mode, examples)
    assert not failures, _report(failures)
