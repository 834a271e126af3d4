"""Background backtests: queue, progress, result, cancellation (synchronised with events,
never with sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sigma.api.context import ApiContext
from sigma.api.jobs import JobRunner, JobStateError
from sigma.api.users import create_user
from sigma.bootstrap import App
from sigma.engine.engine import Cancelled
from sigma.store.db import session_scope
from tests.api.conftest import PASSWORD, login

Headers = Callable[[str], dict[str, str]]
RUN = {"strategy": "sma_cross", "symbol": "BTC", "bars": 25_000}


def runner_of(api: FastAPI) -> JobRunner:
    ctx: ApiContext = api.state.ctx
    return ctx.jobs


def test_job_runs_in_background_and_stores_the_backtest(
    client: TestClient, api: FastAPI, auth: Headers
) -> None:
    started = client.post("/api/backtests/jobs", json=RUN, headers=auth("trader"))
    assert started.status_code == 202
    job = started.json()
    assert job["status"] in ("queued", "running") and job["user"] == "trader"
    future = runner_of(api).get(job["id"]).future  # type: ignore[union-attr]
    assert future is not None
    future.result(timeout=120)

    done = client.get(f"/api/backtests/jobs/{job['id']}", headers=auth("viewer")).json()
    assert (done["status"], done["progress"], done["error"]) == ("done", 1.0, None)
    assert done["finished_at"] is not None
    detail = client.get(f"/api/backtests/{done['backtest_id']}", headers=auth("viewer")).json()
    assert detail["summary"]["stats"]["bars"] == 25_000
    listed = client.get("/api/backtests/jobs", headers=auth("viewer")).json()
    assert [j["id"] for j in listed] == [job["id"]]
    # A finished job cannot be cancelled.
    late = client.delete(f"/api/backtests/jobs/{job['id']}", headers=auth("trader"))
    assert (late.status_code, late.json()["detail"]) == (409, f"job {job['id']} already done")


def test_queued_job_is_cancelled_before_it_starts(
    client: TestClient, api: FastAPI, auth: Headers
) -> None:
    runner = runner_of(api)
    release = threading.Event()
    # Occupy the single worker so the API's job has to wait in the queue.
    blocker = runner.submit(lambda p, c: int(release.wait()), strategy="x", symbol="y", user="t")
    job = client.post("/api/backtests/jobs", json=RUN, headers=auth("trader")).json()
    assert job["status"] == "queued"
    cancelled = client.delete(f"/api/backtests/jobs/{job['id']}", headers=auth("trader"))
    assert cancelled.status_code == 200
    release.set()
    blocker.future.result(timeout=30)  # type: ignore[union-attr]
    runner.get(job["id"]).future.result(timeout=30)  # type: ignore[union-attr]
    final = client.get(f"/api/backtests/jobs/{job['id']}", headers=auth("viewer")).json()
    assert (final["status"], final["backtest_id"]) == ("cancelled", None)
    assert client.get("/api/backtests", headers=auth("viewer")).json() == []


def test_job_requests_are_validated_up_front(client: TestClient, auth: Headers) -> None:
    bad = client.post(
        "/api/backtests/jobs", json={**RUN, "params": {"slow": 1}}, headers=auth("trader")
    )
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("body.params.slow: ")
    assert client.get("/api/backtests/jobs", headers=auth("trader")).json() == []
    assert client.post("/api/backtests/jobs", json=RUN, headers=auth("viewer")).status_code == 403


@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_job_is_404(client: TestClient, auth: Headers, method: str) -> None:
    response = client.request(method, "/api/backtests/jobs/nope", headers=auth("trader"))
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "backtest job nope not found"},
    )


@pytest.fixture
def blocked(api: FastAPI) -> Iterator[JobRunner]:
    """The API's runner (2 pending jobs per user, 1 backtest inside requests) with its single
    worker held by another user's job until the test ends: the API's jobs stay queued, and
    are cancelled before the worker is freed, so none of them runs."""
    runner = JobRunner(per_user=2, inline=1)
    api.state.ctx.jobs = runner
    release = threading.Event()
    blocker = runner.submit(lambda p, c: int(release.wait()), strategy="x", symbol="y", user="t")
    yield runner
    for job in runner.list():
        if not job.finished:
            runner.cancel(job.id)
    release.set()
    blocker.future.result(timeout=30)  # type: ignore[union-attr]


def test_a_user_may_have_only_a_few_jobs_pending(
    client: TestClient, blocked: JobRunner, auth: Headers
) -> None:
    # Before, every submit was queued: one client looping on it held memory and the pool.
    trader = auth("trader")
    first, _second = (
        client.post("/api/backtests/jobs", json=RUN, headers=trader).json() for _ in range(2)
    )
    third = client.post("/api/backtests/jobs", json=RUN, headers=trader)
    assert (third.status_code, third.json()["detail"]) == (
        429,
        "user 'trader' already has 2 backtests queued or running (at most 2); "
        "wait for one or cancel it",
    )
    assert len(blocked.list()) == 3  # the blocker and two; the third was not queued
    # Another user has a queue of their own.
    assert client.post("/api/backtests/jobs", json=RUN, headers=auth("admin")).status_code == 202
    # A cancelled queued job is over at once and frees its place.
    cancelled = client.delete(f"/api/backtests/jobs/{first['id']}", headers=trader)
    assert cancelled.json()["status"] == "cancelled"
    assert client.post("/api/backtests/jobs", json=RUN, headers=trader).status_code == 202


def test_a_trader_cannot_cancel_another_users_job(
    client: TestClient, blocked: JobRunner, auth: Headers, sigma_app: App
) -> None:
    with session_scope(sigma_app.sessions) as session:
        create_user(session, "trader2", PASSWORD, "trader", rounds=4)
    theirs = client.post("/api/backtests/jobs", json=RUN, headers=login(client, "trader2")).json()
    refused = client.delete(f"/api/backtests/jobs/{theirs['id']}", headers=auth("trader"))
    assert (refused.status_code, refused.json()["detail"]) == (
        403,
        f"forbidden: backtest job {theirs['id']} belongs to user 'trader2'",
    )
    assert blocked.get(theirs["id"]).status == "queued"  # type: ignore[union-attr]
    # An admin may cancel anyone's.
    cancelled = client.delete(f"/api/backtests/jobs/{theirs['id']}", headers=auth("admin"))
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")


def test_backtests_inside_requests_are_capped(
    client: TestClient, blocked: JobRunner, auth: Headers
) -> None:
    # Each holds a request thread and a core: unbounded, a few clients starved the API.
    small = {**RUN, "bars": 50}
    compare = {"symbol": "BTC", "bars": 50, "strategies": ["sma_cross", "rsi_reversion"]}
    with blocked.inline_slot():
        for path, body in (("/api/backtests", small), ("/api/backtests/compare", compare)):
            busy = client.post(path, json=body, headers=auth("trader"))
            assert (busy.status_code, busy.json()["detail"]) == (
                429,
                "1 backtests are already running in requests; "
                "queue this one with POST /api/backtests/jobs",
            ), path
    assert client.get("/api/backtests", headers=auth("viewer")).json() == []
    assert client.post("/api/backtests", json=small, headers=auth("trader")).status_code == 201


# --- the runner alone -------------------------------------------------------------------------


def test_running_job_stops_on_cancel_and_reports_progress() -> None:
    runner = JobRunner()
    started = threading.Event()

    def work(progress: Callable[[int, int], None], cancel: threading.Event) -> int:
        progress(1, 4)
        started.set()
        cancel.wait()
        raise Cancelled("stopped")

    job = runner.submit(work, strategy="s", symbol="X", user="u")
    started.wait(30)
    assert (job.status, job.progress) == ("running", 0.25)
    assert runner.cancel(job.id) is job
    job.future.result(timeout=30)  # type: ignore[union-attr]
    assert job.status == "cancelled" and job.finished_at is not None
    assert runner.cancel("unknown") is None
    runner.shutdown()


def test_failed_job_keeps_the_error_and_old_jobs_are_forgotten() -> None:
    runner = JobRunner(keep=2)

    errors = [
        ValueError("not enough bars"),
        OSError("/var/lib/sigma/reports: no space left"),
        RuntimeError("no data"),
    ]

    def broken(progress: Callable[[int, int], None], cancel: threading.Event) -> int:
        raise errors.pop(0)

    jobs = []
    for _ in range(3):
        job = runner.submit(broken, strategy="s", symbol="X", user="u")
        job.future.result(timeout=30)  # type: ignore[union-attr]
        jobs.append(job)
    # What was wrong with the run is shown; another error's text (paths, SQL) is not.
    assert jobs[0].status == "failed" and jobs[0].error == "ValueError: not enough bars"
    assert jobs[1].error == "OSError (see the server log)"
    assert jobs[2].error == "RuntimeError (see the server log)"
    # Submitting the third dropped the oldest finished job.
    assert [j.id for j in runner.list()] == [jobs[2].id, jobs[1].id]
    with pytest.raises(JobStateError, match="already failed"):
        runner.cancel(jobs[1].id)
    runner.shutdown()
    runner.shutdown()  # idempotent
    # A shut-down runner starts a fresh pool on the next job.
    again = runner.submit(lambda p, c: 7, strategy="s", symbol="X", user="u")
    again.future.result(timeout=30)  # type: ignore[union-attr]
    assert (again.status, again.backtest_id) == ("done", 7)
    runner.shutdown()
