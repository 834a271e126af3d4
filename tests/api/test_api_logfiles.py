"""GET /api/logs and /api/logs/{name}: the process log files, admins only, by name only."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.ops.logging import log_file

Headers = Callable[[str], dict[str, str]]


def write_log(app: App, command: str, *records: tuple[str, str]) -> None:
    path = log_file(app.settings.process.var_dir, command)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(
            json.dumps({"ts": "2026-12-07T00:00:00.000Z", "level": level, "logger": "sigma.x",
                        "msg": msg, "pid": 7}) + "\n"
            for level, msg in records
        )
    )  # fmt: skip


def test_admins_list_and_tail_log_files_by_name(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    admin = auth("admin")
    assert client.get("/api/logs", headers=admin).json() == []
    write_log(
        sigma_app, "up", ("INFO", "order_sent sma_cross BTC buy 0.5 @ 100"), ("ERROR", "boom")
    )
    write_log(sigma_app, "api", ("INFO", "started"))
    listed = client.get("/api/logs", headers=admin).json()
    assert [f["name"] for f in listed] == ["api", "up"] and listed[1]["size"] > 0
    every = client.get("/api/logs/up", headers=admin).json()
    assert [(line["level"], line["msg"]) for line in every] == [
        ("INFO", "order_sent sma_cross BTC buy 0.5 @ 100"),
        ("ERROR", "boom"),
    ]
    assert every[0]["extra"] == {"pid": 7} and every[0]["logger"] == "sigma.x"
    errors = client.get("/api/logs/up?level=ERROR", headers=admin).json()
    assert [line["msg"] for line in errors] == ["boom"]
    found = client.get("/api/logs/up?q=btc&limit=5", headers=admin).json()
    assert [line["msg"] for line in found] == ["order_sent sma_cross BTC buy 0.5 @ 100"]


def test_log_files_are_for_admins_and_named_not_pathed(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    write_log(sigma_app, "up", ("INFO", "x"))
    assert client.get("/api/logs", headers=auth("trader")).status_code == 403
    assert client.get("/api/logs/up", headers=auth("viewer")).status_code == 403
    admin = auth("admin")
    assert client.get("/api/logs/nope", headers=admin).status_code == 404
    for sneaky in ("..%2Fjwt_secret", "up.log", "%2Fetc%2Fpasswd"):
        assert client.get(f"/api/logs/{sneaky}", headers=admin).status_code == 404
    assert client.get("/api/logs/up?level=LOUD", headers=admin).status_code == 422
