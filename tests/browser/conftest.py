"""Fixtures for browser tests: the studio served in-process, and real Chromium via Playwright.

* ``studio`` starts the whole app (fresh SQLite database, default constitution seeded) on a
  free port and yields its URL together with the ``Services`` object, so tests can check what
  the browser did against the database.
* ``browser`` is one headless Chromium per test session; ``new_page`` opens a page in a fresh
  context (its own cookies, so its own Gradio session); ``page`` is the usual single page.
* When a test fails, every page it opened is saved as test-artifacts/<test name>[-N].png.

Chromium is Debian's /usr/bin/chromium (no Playwright browser download needed). Without it the
tests skip locally, but fail when the CI environment variable is set: CI must run them.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from backend.services.container import Services, start
from backend.settings import Settings
from studio.app import build_app, launch

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# what the page itself may take to react (a click, a table filling in) on a busy 2-core CI
# machine; model runs have longer limits of their own in each test
UI_TIMEOUT = 30_000  # ms
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _require_browser() -> None:
    """Skip (locally) or fail (in CI) when Chromium is missing."""
    if CHROMIUM.exists():
        return
    missing = f"Chromium not found at {CHROMIUM} (install it: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI, but {missing}", pytrace=False)
    pytest.skip(f"browser tests skipped: {missing}")


@dataclass(frozen=True)
class Studio:
    """A running studio: where the browser goes, and the services behind it."""

    url: str
    services: Services


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    """The studio on a fresh database, served from a background thread of this process."""
    _require_browser()
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "studio-data", user="browser-tester", port=port,
                        database_url=None)
    services = start(settings)
    try:
        demo = build_app(settings, services)
        try:
            launch(demo, settings, block=False, services=services)
            yield Studio(url=f"http://127.0.0.1:{port}", services=services)
        finally:
            demo.close()
    finally:
        services.close()


@pytest.fixture
def studio_url(studio: Studio) -> str:
    return studio.url


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    _require_browser()
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    chromium = playwright_instance.chromium.launch(executable_path=str(CHROMIUM),
                                                   args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                        pytest.TestReport]:
    """Remember each phase's report on the item, so fixtures can see whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
               for when in ("setup", "call"))


@pytest.fixture
def new_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[[], Page]]:
    """Factory: each call opens a page in its own fresh browser context."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        # actions (clicks, fills): on 2 cores with the suite's two workers, a busy page
        # sometimes took over 15 s to finish a tab click (CI flakes); passing runs are no slower
        context.set_default_timeout(UI_TIMEOUT)
        contexts.append(context)
        pg = context.new_page()
        pages.append(pg)
        return pg

    yield make

    if _failed(request):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for i, pg in enumerate(pages):
            suffix = "" if i == 0 else f"-{i + 1}"
            try:
                pg.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)
            except Exception as exc:
                print(f"could not save screenshot of page {i + 1}: {exc}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Page]) -> Page:
    return new_page()
