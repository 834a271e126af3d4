"""Scheduled jobs through the API: list, history, pause/resume/trigger, progress and cancel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.scheduler.service import SchedulerService
from tests.api.conftest import login

Headers = Callable[[str], dict[str, str]]


def jobs_by_id(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, object]]:
    return {j["id"]: j for j in client.get("/api/jobs", headers=headers).json()}


def test_list_pause_resume_trigger(client: TestClient, auth: Headers) -> None:
    viewer, admin = auth("viewer"), auth("admin")
    jobs = jobs_by_id(client, viewer)
    assert sorted(jobs) == ["hourly", "nightly", "slow"]
    nightly = jobs["nightly"]
    assert (nightly["description"], nightly["paused"], nightly["running"]) == ("03:00", False, None)
    assert str(nightly["next_run"]).endswith("T03:00:00Z")

    paused = client.post("/api/jobs/hourly/pause", headers=admin).json()
    assert (paused["paused"], paused["next_run"]) == (True, None)
    assert jobs_by_id(client, viewer)["hourly"]["paused"] is True
    resumed = client.post("/api/jobs/hourly/resume", headers=admin).json()
    assert resumed["paused"] is False and resumed["next_run"] is not None

    before = datetime.now(UTC)
    triggered = client.post("/api/jobs/nightly/trigger", headers=admin).json()
    due = datetime.fromisoformat(str(triggered["next_run"]))
    assert before - timedelta(seconds=1) <= due <= datetime.now(UTC)
    assert client.post("/api/jobs/hourly/pause", headers=auth("trader")).status_code == 403


def test_runs_progress_and_cancel(
    client: TestClient, auth: Headers, scheduler: SchedulerService, slow_started: threading.Event
) -> None:
    viewer, admin = auth("viewer"), auth("admin")
    record = scheduler.manager.run("hourly")
    runs = client.get("/api/jobs/hourly/runs", headers=viewer).json()
    assert [(r["id"], r["outcome"], r["error"]) for r in runs] == [
        (record.run_id, record.outcome, None)
    ]
    assert jobs_by_id(client, viewer)["hourly"]["last_outcome"] == record.outcome

    assert client.post("/api/jobs/slow/cancel", headers=admin).json() == {"cancelled": False}
    worker = threading.Thread(target=scheduler.manager.run, args=("slow",))
    worker.start()
    assert slow_started.wait(30)
    assert jobs_by_id(client, viewer)["slow"]["running"] == {"done": 1, "total": 2}
    assert client.post("/api/jobs/slow/cancel", headers=admin).json() == {"cancelled": True}
    worker.join(30)
    last = client.get("/api/jobs/slow/runs?limit=1", headers=viewer).json()[0]
    assert last["outcome"] == "cancelled" and "cancelled at 1/2" in last["error"]
    assert jobs_by_id(client, viewer)["slow"]["running"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/jobs/nope/runs"),
        ("post", "/api/jobs/nope/pause"),
        ("post", "/api/jobs/nope/resume"),
        ("post", "/api/jobs/nope/trigger"),
        ("post", "/api/jobs/nope/cancel"),
    ],
)
def test_unknown_job_is_404(client: TestClient, auth: Headers, method: str, path: str) -> None:
    response = client.request(method, path, headers=auth("admin"))
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "scheduled job 'nope' not found"},
    )


def test_without_a_scheduler_jobs_are_503(sigma_app: App) -> None:
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None)) as client:
        response = client.get("/api/jobs", headers=login(client, "viewer"))
    assert response.status_code == 503
    assert response.json()["detail"].startswith("no scheduler runs in this process")
