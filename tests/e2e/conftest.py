"""Headless Chromium (Debian's, driven by Playwright) against the app served on 127.0.0.1.

The app is the test session's own (its database and localstripe), served by
werkzeug in a thread, so the test can tick the scheduler between pages.
Screenshots go to ``test-artifacts/screenshots/<backend>/<screen>/``.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from config import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google's hosts,
# which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "screenshots"


@pytest.fixture
def live_server(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshots(request, backend) -> Path:
    """``test-artifacts/screenshots/<backend>/<screen>/`` (emptied first)."""
    params = getattr(request.node, "callspec", None)
    screen = params.params.get("screen", "") if params else ""
    folder = ARTIFACTS / backend / screen
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
