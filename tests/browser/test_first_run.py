"""Issue 14 point 1 in Chromium: a first run without the shared data (no ../shared). The
Playground's demo prompts come from the built-in prompt set, and the Training tab queues an
SL-CAI data job with the default prompt set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.engines.base import Engine
from backend.services import container
from backend.services.container import start
from backend.settings import Settings
from studio.app import build_app, launch
from tests.browser.conftest import UI_TIMEOUT, Studio, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT = UI_TIMEOUT


@pytest.fixture
def bare_studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    monkeypatch.setattr(container, "default_prompt_set_path", lambda: None)
    monkeypatch.delenv("CSTUDIO_PROMPT_SET_PATH", raising=False)
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "data", user="newcomer", port=port,
                        database_url=None, prompt_set_path=None, embedded_worker=False,
                        engine="tiny")
    services = start(settings)
    demo = build_app(settings, services)
    launch(demo, settings, block=False, services=services)
    try:
        yield Studio(url=f"http://127.0.0.1:{port}", services=services)
    finally:
        demo.close()
        services.close()


def test_demo_prompts_and_the_default_prompt_set_work_without_shared_data(
        bare_studio: Studio, page: Page) -> None:
    page.goto(bare_studio.url)
    page.get_by_role("tab", name="Playground").click()
    picker = page.locator("#pg-prompt-set")
    expect(picker).to_be_visible(timeout=TIMEOUT)
    picker.locator("input").click(timeout=90_000)  # once the page load is done
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=TIMEOUT)
    assert options.count() >= 60
    page.get_by_role("tab", name="Training").click()
    page.locator("#tr-sl_cai_data-launch").click()
    expect(page.locator("#tr-launch-result")).to_contain_text("Queued job", timeout=TIMEOUT)


@pytest.mark.parametrize("width", [1280, 390])  # a desktop, a phone
def test_the_tabs_stay_put_while_the_model_loads(bare_studio: Studio, page: Page,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 width: int) -> None:
    """The header says "loading" until the model is in, and its final line (the demo warning,
    the longest) does not push the tab bar down: it moved three lines, under the pointer, seconds
    after the page opened."""
    page.set_viewport_size({"width": width, "height": 900})
    loaded = threading.Event()
    build = bare_studio.services.engines.get

    def slow_get() -> Engine:
        loaded.wait(60)
        return build()

    monkeypatch.setattr(bare_studio.services.engines, "get", slow_get)
    try:
        page.goto(bare_studio.url)
        badge = page.locator("#model-badge")
        expect(badge).to_contain_text("Model: loading", timeout=TIMEOUT)
        expect(page.locator("#active-constitution")).to_contain_text("v1", timeout=TIMEOUT)
        tab = page.get_by_role("tab", name="Constitution")
        before = tab.bounding_box()
        loaded.set()
        expect(badge).to_contain_text("demo model: random weights", timeout=TIMEOUT)
        after = tab.bounding_box()
    finally:
        loaded.set()
    assert before is not None and after is not None
    assert abs(after["y"] - before["y"]) <= 2, (before, after)
