"""A performance report published with its PDF: the API serves both (`?format=pdf`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.reports.performance import publish
from sigma.store.db import session_scope

Headers = Callable[[str], dict[str, str]]


def test_report_pdf_is_served_next_to_the_html(
    client: TestClient, auth: Headers, sigma_app: App, tmp_path: Path
) -> None:
    now = datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
    with session_scope(sigma_app.sessions) as session:
        publish(session, "weekly", 7, now, tmp_path / "with", Decimal(10_000), pdf=True)
        publish(session, "daily", 1, now, tmp_path / "without", Decimal(10_000))
    h = auth("viewer")
    ids = {r["kind"]: r["id"] for r in client.get("/api/reports", headers=h).json()}
    weekly, daily = ids["weekly"], ids["daily"]
    pdf = client.get(f"/api/reports/{weekly}/file?format=pdf&download=true", headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith(
        'attachment; filename="weekly-2026-03-09.pdf"'
    )
    html = client.get(f"/api/reports/{weekly}/file", headers=h)
    assert html.headers["content-type"].startswith("text/html")
    missing = client.get(f"/api/reports/{daily}/file?format=pdf", headers=h)
    assert (missing.status_code, missing.json()["detail"]) == (404, f"report {daily} has no PDF")
    bad = client.get(f"/api/reports/{weekly}/file?format=doc", headers=h)
    assert bad.status_code == 422
