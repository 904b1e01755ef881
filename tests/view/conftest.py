"""A real browser for the view and playground tests: Debian's Chromium driven by Playwright, and the playground
served on a free local port. Without /usr/bin/chromium (apt-get install chromium) the browser tests skip."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, EXAMPLES


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) to run the "
                    "browser tests")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the test extra)")
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield context.new_page()
    finally:
        context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def playground_url() -> Iterator[str]:
    """The playground over examples/, served by uvicorn in a thread of the test process."""
    uvicorn = pytest.importorskip("uvicorn", reason="the playground needs the playground extra")
    from lmlang.playground import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(EXAMPLES), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the playground server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
