"""End-to-end fixtures: the real API (uvicorn, in a background thread, temp SQLite database,
in-process bus) serving the built dashboard, seeded through the store and user code, and
Debian's Chromium driven by Playwright.

Chromium must be at /usr/bin/chromium (`scripts/ensure_services.sh` installs it); a missing
browser fails the tests rather than skipping them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from e2e_support import (
    CHROMIUM,
    DIST,
    SCREENSHOTS,
    LiveServer,
    ensure_dist,
    free_port,
    make_scheduler,
    seed,
)
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.config import load_settings


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The API with the dashboard on a free port, seeded, for the whole session."""
    ensure_dist()
    tmp = tmp_path_factory.mktemp("e2e")
    app = App(
        load_settings(
            database_url=f"sqlite:///{tmp / 'e2e.db'}",
            var_dir=tmp / "var",
            bcrypt_rounds=4,
            jwt_secret="e2e-secret-not-for-production-0123456789",
        )
    )
    seeded = seed(app)
    pubsub = InMemoryPubSub()
    scheduler = make_scheduler(app)
    api = create_api(api_deps(app), pubsub, static_dir=DIST, scheduler=scheduler)
    port = free_port()
    uv = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(uv.serve(),), daemon=True)
    thread.start()
    ready = threading.Event()

    def started() -> None:
        if uv.started:
            ready.set()
        elif thread.is_alive():
            loop.call_later(0.05, started)
        else:  # pragma: no cover - serve() failed
            ready.set()

    loop.call_soon_threadsafe(started)
    ready.wait(30)
    if not uv.started:
        pytest.fail("the API server did not start")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, pubsub, loop, seeded)
    finally:
        uv.should_exit = True
        scheduler.shutdown(wait=False)
        thread.join(15)
        loop.close()
        app.close()


# Module scope: the sync API keeps an event loop marked as running in this thread until it
# stops, which would break every asyncio test that the same xdist worker runs afterwards.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium; fails loudly when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/ensure_services.sh (apt-get install chromium)"
        )
    b = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"]
    )
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser, server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (empty storage) on the dashboard; a screenshot at the end."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # The API's Content-Security-Policy must not block anything the built dashboard does.
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield pg
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"
